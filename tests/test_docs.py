"""The documentation site builds with no warning (mkdocs --strict: a broken link or a missing page fails), its
settings reference is what the settings' definitions say, and README links only to pages that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from mockpanel.docsgen import REFERENCE, settings_reference

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_with_no_warning(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    site = tmp_path / "site"
    assert (site / "reference" / "settings" / "index.html").exists()
    assert (site / "img" / "test_pane_snapshot[2-120x36].svg").exists()  # the snapshot tests' own pictures
    assert "S3_BUCKET_NAMES" in (site / "reference" / "settings" / "index.html").read_text()


def test_the_settings_reference_is_generated_from_the_settings():
    assert REFERENCE.read_text() == settings_reference(), "docs/reference/settings.md is stale: run python -m mockpanel.docsgen"


def test_readme_links_to_pages_that_exist():
    links = re.findall(r"\]\((docs/[^)#]+)", (ROOT / "README.md").read_text())
    assert links and all((ROOT / link).exists() for link in links), [link for link in links if not (ROOT / link).exists()]
