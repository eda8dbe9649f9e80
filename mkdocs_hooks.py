"""mkdocs hook: the panel's pictures are the snapshot tests' own SVGs (tests/__snapshots__), served as img/NAME.svg,
so a screenshot in the docs is what the suite last compared the panel against — never a copy that drifts."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

SNAPSHOTS = Path(__file__).resolve().parent / "tests" / "__snapshots__" / "test_panel_snapshots"


def on_files(files, config):
    for svg in sorted(SNAPSHOTS.glob("*.svg")):
        files.append(File.generated(config, f"img/{svg.name}", abs_src_path=str(svg)))
    return files
