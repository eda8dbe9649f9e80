"""The app's own operations (header, palette, chaos off, faults, restart, tokens), run on the servers' loop: here,
beside the panes' operations, so the mocks' side of attach (panel_api.py) loads them without importing the app."""

from __future__ import annotations

from typing import Any

from ..hubclient import panel_op

MAX_PALETTE_OBJECTS = 200  # "Copy presigned URL for ..." entries (the Storage pane has every object)


@panel_op
def palette_state(hub: Any) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str, str]]]:
    """The servers, (bucket, key) of up to MAX_PALETTE_OBJECTS objects, (id, email, name) of every user."""
    storage, accounts = hub.facade("s3"), hub.facade("auth")
    objects = [(b.name, meta.key) for b in storage.buckets() for meta in storage.objects(b.name, limit=MAX_PALETTE_OBJECTS)] if storage else []
    users = [(u.id, u.email, u.name) for u in accounts.users()] if accounts else []
    return list(hub.runners), objects[:MAX_PALETTE_OBJECTS], users


@panel_op
def header_state(hub: Any) -> tuple[list[tuple[str, str, bool]], str | None]:
    """What the header shows: (name, status, faulty) of every server, and the mocks' time while it is not the wall
    clock (None while it is)."""
    provider = oidc_of(hub)
    return [(name, runner.status, runner.ctx.faults.active or runner.ctx.toxics.active
             or (name == "auth" and provider is not None and bool(provider.faulty())))
            for name, runner in hub.runners.items()], hub.clock.describe()


@panel_op
def clock_state(hub: Any) -> dict[str, Any]:
    """The mocks' clock, as GET /__mockpanel/clock answers."""
    return hub.clock.state()


@panel_op
def change_clock(hub: Any, change: dict[str, Any] | None) -> dict[str, Any]:
    """Move the mocks' one clock (clock.change's arguments; None: back to the wall clock); its state after."""
    return hub.clock.change(**change) if change else hub.clock.reset()


@panel_op
def chaos_off(hub: Any) -> tuple[list[str], list[str], list[str]]:
    """Every fault of every server off, network toxics (of mocks and proxies), webhook response plans and OIDC token
    faults too: (plans, issuers, toxic holders) cleared."""
    for runner in hub.runners.values():
        runner.ctx.faults.clear()
    toxic = hub.network.clear_toxics()
    receiver = hub.facade("webhooks")
    provider = oidc_of(hub)
    return (receiver.clear_plans() if receiver is not None else []), (provider.clear_all_faults() if provider is not None else []), toxic


@panel_op
def change_faults(hub: Any, server: str, **changes: Any) -> str:
    """Change one server's faults (none given: all off); the policy in words."""
    faults = hub[server].ctx.faults
    if "toggle" in changes:
        field = changes.pop("toggle")
        changes[field] = not getattr(faults.policy, field)
    policy = faults.update(**changes) if changes else faults.clear()
    return ", ".join(policy.describe()) or "no faults"


@panel_op
async def restart(hub: Any, server: str) -> tuple[bool, str | None]:
    ok = await hub[server].restart()
    return ok, hub[server].reason


@panel_op
def issue_token(hub: Any, user_id: str, kind: str, ttl_s: float | None) -> tuple[str, str]:
    accounts = hub.facade("auth")
    return accounts.issue_token(user_id, kind, ttl_s), accounts.user(user_id).email


@panel_op(local=True)
async def save_state_to(hub: Any, path: str) -> dict[str, Any]:
    """Every mock's state to a file or directory of this machine (state.py)."""
    from pathlib import Path

    from ..state import save

    return await save(hub, Path(path))


@panel_op(local=True)
async def load_state_from(hub: Any, path: str) -> dict[str, Any]:
    from pathlib import Path

    from ..state import load

    return await load(hub, Path(path))


@panel_op(local=True)
async def replay_bundle(hub: Any, directory: str) -> int:
    """A repro bundle's journal into these mocks' (which started from its end state), and the clock stopped where the
    run ended: every pane shows what the run saw. How many requests."""
    from pathlib import Path

    from ..bundle import Bundle, import_journal

    bundle = Bundle(Path(directory))
    count = import_journal(hub, bundle)
    hub.clock.change(now=bundle.end_clock(), frozen=True)
    return count


@panel_op(local=True)
def write_journal(hub: Any, path: Any, redact: bool) -> str:
    return str(hub.write_journal(path, redact).path)


def oidc_of(hub: Any) -> Any:
    """The auth server's OIDC provider, or None when auth is not running."""
    accounts = hub.facade("auth")
    return getattr(accounts, "oidc", None)
