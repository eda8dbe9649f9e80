"""Faults pane: each server's fault policy, set by key or to an exact value by prompt; the webhook receiver's
response plans beside them; one key turns all chaos off."""

from __future__ import annotations

from typing import Any, Callable

from textual.binding import Binding
from textual.widgets import DataTable, Static

from ..display import plain
from ..hubclient import panel_op
from .base import Pane, cursor_key, cut, restore_cursor
from .dialogs import PromptDialog


def percent(text: str) -> float:
    """'10', '10%', '2.5 %' -> 0.1, 0.025; ValueError with the reason otherwise."""
    try:
        value = float(text.strip().rstrip("%").strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number: type a percentage, e.g. 10") from None
    if not 0 <= value <= 100:
        raise ValueError("a percentage from 0 to 100")
    return value / 100


def check_with(parse: Callable[[str], object]) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        try:
            parse(text)
        except ValueError as exc:
            return str(exc)
        return None

    return check


def codes(text: str) -> list[int]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError("status codes are numbers, e.g. 503,500") from None
    if not values or any(not 400 <= v <= 599 for v in values):
        raise ValueError("status codes from 400 to 599, comma-separated, e.g. 503,429")
    return values


def delay_bounds(text: str) -> tuple[int, int]:
    parts = text.replace("-", " ").split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError("two whole numbers of ms: min max, e.g. 50 200")
    low, high = int(parts[0]), int(parts[1])
    if low > high or high > 600_000:
        raise ValueError("min not above max, and at most 600000 ms")
    return low, high


@panel_op
def fault_state(hub: Any) -> tuple[str | None, list[str], list[tuple[str, Any]]]:
    """What the Faults pane shows, read on the servers' loop: the scenario in progress, webhook response plans, and
    each server's policy (a copy: the live one changes with every fail-next)."""
    run = hub.scenario_run
    receiver = hub.facade("webhooks")
    plans = [f"{client} {plan.describe()}" for client, plan in receiver.plans().items()] if receiver is not None else []
    return (run.describe() if run is not None else None, plans,
            [(name, runner.ctx.faults.policy.model_copy(), runner.ctx.toxics.describe()) for name, runner in hub.runners.items()])


@panel_op
def add_toxic(hub: Any, names: list[str], text: str) -> list[str]:
    """A toxic typed as words (`latency latency=300 stream=upstream`) on each named server or proxy; what each has
    now (DomainError: the reason, nothing added)."""
    from ..spec import DomainError
    from ..toxics import ToxicError, parse_toxic_words

    try:
        toxic = parse_toxic_words(text)
    except ToxicError as exc:
        raise DomainError(str(exc)) from None
    for name in names:
        hub.network.add_toxic(name, toxic.model_copy())
    return [", ".join(hub.network.toxics(name).describe()) for name in names]


@panel_op
def clear_toxics(hub: Any, names: list[str]) -> list[str]:
    """Every toxic of the named servers or proxies off; those that had any."""
    return [name for name in names if hub.network.toxics(name).clear()]


@panel_op
def change_faults(hub: Any, names: list[str], fields: dict[str, Any]) -> list[Any]:
    """Change those fields of the named servers' policies; their new policies (copies)."""
    return [hub[name].ctx.faults.update(**fields).model_copy() for name in names]


@panel_op
def clear_faults(hub: Any, names: list[str]) -> None:
    """Every fault of the named servers off: HTTP faults and network toxics."""
    for name in names:
        hub[name].ctx.faults.clear()
        hub[name].ctx.toxics.clear()


def in_words(policy) -> str:
    described = policy.describe()
    return ", ".join(described) if described else "no faults"


class FaultsPane(Pane):
    TITLE = "Faults"
    KEY = "faults"
    BINDINGS = [
        Binding("d", "toggle('delay_enabled')", "Delays", tooltip="Delays on/off (min/max ms from the policy)"),
        Binding("m", "delay_bounds", "Delay ms…", tooltip="Delay bounds in ms, e.g. 50 200 (switches delays on)"),
        Binding("e", "rate('error_rate')", "Error rate…", tooltip="Share of requests answered with an injected error, in %"),
        Binding("s", "error_codes", "Status codes…", tooltip="Status codes injected errors use, e.g. 503,429"),
        Binding("n", "fail_next", "Fail next 3"),
        Binding("l", "rate('drop_rate')", "Drop…", tooltip="Share of connections lost with no response, in %"),
        Binding("h", "rate('hang_rate')", "Hang…", tooltip="Share of requests held until the client gives up, in %"),
        Binding("x", "clear_one", "Off", tooltip="Every fault of the selected server off (the last row: every server)"),
        Binding("o", "clear_one", "Off", show=False),
        Binding("t", "toxic", "Toxic…", tooltip="A network toxic on the selected server's connections: latency latency=300, "
                "bandwidth rate=50, reset_peer timeout=0, limit_data bytes=1000, timeout, slicer, slow_close"),
        Binding("S", "scenario", "Scenario…", tooltip="Run a TOML fault schedule from now"),
    ]

    HINT = "Keys act on the selected server; the last row acts on every server. ! turns all chaos off."
    policies: dict[str, Any] = {}  # name -> policy, as last read (refresh_view)

    def compose(self):
        yield Static(self.HINT, classes="hint", id="faults-hint")
        table = DataTable(id="faults-table", cursor_type="row", zebra_stripes=True)
        table.add_columns("server", "delay", "min ms", "max ms", "error rate", "codes", "fail next", "drop", "hang", "network")
        yield table

    def refresh_view(self) -> None:
        lines = [self.HINT]
        scenario, plans, policies = self.read(fault_state)
        self.policies = {name: policy for name, policy, _ in policies}
        if scenario is not None:
            lines.append(scenario)
        if plans:
            lines.append("Webhook response plans: " + "; ".join(plans))
        self.query_one("#faults-hint", Static).update(plain("\n".join(lines), lines=True))
        table = self.query_one(DataTable)
        key, row = cursor_key(table), table.cursor_row
        table.clear()
        for name, p, toxics in policies:
            table.add_row(name, "on" if p.delay_enabled else "off", str(p.min_delay_ms), str(p.max_delay_ms), f"{p.error_rate:.0%}",
                          ",".join(map(str, p.error_codes)), str(p.fail_next), f"{p.drop_rate:.0%}", f"{p.hang_rate:.0%}",
                          plain(cut("; ".join(toxics), 40)) if toxics else "", key=name)
        table.add_row("(all servers)", "", "", "", "", "", "", "", "", "", key="*")
        restore_cursor(table, key, row)

    def targets(self) -> list[str]:
        key = cursor_key(self.query_one(DataTable))
        return list(self.policies) if key in ("*", None) else [key]

    def first_policy(self) -> Any:
        """The policy of the first server the keys act on (as last read: what the prompts start from)."""
        return self.policies[self.targets()[0]]

    def target_name(self) -> str:
        key = cursor_key(self.query_one(DataTable))
        return "every server" if key in ("*", None) else key

    def acts_on(self) -> str:
        return self.target_name()

    def change(self, **fields) -> None:
        states = {in_words(p) for p in self.client.command(change_faults, self.targets(), fields)}
        said = states.pop() if len(states) == 1 else "changed"
        self.app.notify(f"{self.target_name()}: {said}")

    def action_toggle(self, field: str) -> None:
        self.change(**{field: not getattr(self.first_policy(), field)})

    def action_rate(self, field: str) -> None:
        label = {"error_rate": "Error rate", "drop_rate": "Dropped connections", "hang_rate": "Hung requests"}[field]
        current = getattr(self.first_policy(), field)

        def apply(answer: str | None) -> None:
            if answer and answer.strip():
                self.change(**{field: percent(answer)})

        self.app.push_screen(PromptDialog(f"{label} on {self.target_name()}, in % (0 turns it off)", f"{current * 100:g}",
                                          check=check_with(percent)), apply)

    def action_fail_next(self) -> None:
        self.change(fail_next=3)

    def action_scenario(self) -> None:
        self.app.ask_scenario()

    def action_clear_one(self) -> None:
        self.client.command(clear_faults, self.targets())
        self.app.notify(f"{self.target_name()}: no faults, no network toxics")

    def action_toxic(self) -> None:
        ask_toxic(self, self.targets(), self.target_name())

    def action_error_codes(self) -> None:
        def apply(answer: str | None) -> None:
            if answer and answer.strip():
                self.change(error_codes=codes(answer))

        current = ",".join(map(str, self.first_policy().error_codes))
        self.app.push_screen(PromptDialog(f"Status codes of injected errors on {self.target_name()} (comma-separated)", current,
                                          check=check_with(codes)), apply)

    def action_delay_bounds(self) -> None:
        def apply(answer: str | None) -> None:
            if answer and answer.strip():
                low, high = delay_bounds(answer)
                self.change(min_delay_ms=low, max_delay_ms=high, delay_enabled=True)

        p = self.first_policy()
        self.app.push_screen(PromptDialog(f"Delay bounds on {self.target_name()} in ms: min max", f"{p.min_delay_ms} {p.max_delay_ms}",
                                          check=check_with(delay_bounds)), apply)


TOXIC_HELP = ("latency latency=300 jitter=50 · bandwidth rate=50 (KB/s) · slicer average_size=64 delay=1000 (µs) · slow_close delay=500 · "
              "timeout timeout=2000 · reset_peer timeout=0 (or bytes=N) · limit_data bytes=1000; add stream=upstream (default "
              "downstream: what the client receives), toxicity=50%, name=…")


def ask_toxic(pane: Any, targets: list[str], label: str) -> None:
    """The prompt for a network toxic on `targets` (servers or proxies), shared by the Faults and Proxies panes."""
    from ..spec import DomainError
    from ..toxics import parse_toxic_words

    def apply(answer: str | None) -> None:
        if not answer or not answer.strip():
            return
        try:
            now = pane.client.command(add_toxic, targets, answer.strip())
        except DomainError as exc:
            pane.app.notify(exc.message, severity="error")
            return
        pane.app.notify(f"{label}: {now[0] if len(now) == 1 else 'toxic added'}")

    pane.app.push_screen(PromptDialog(f"Network toxic on {label}", "latency latency=300", placeholder="type, then name=value…",
                                      hint=TOXIC_HELP + " · Enter to confirm · Esc to cancel", check=check_with(parse_toxic_words)), apply)
