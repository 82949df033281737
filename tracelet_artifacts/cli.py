"""The ``tracelet-artifacts`` command: list, show, fetch, verify, sync the embedded store; lineage, rm, prune and
gc for its lifecycle.

Every command exits non-zero with a one-line ``error:`` message on bad input (the shared handler in
``cli_errors``; ``--debug`` shows the traceback); tracebacks are for bugs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import click

from tracelet_artifacts.cli_errors import TraceletGroup
from tracelet_artifacts.errors import ArtifactStoreNotFoundError, TraceletError
from tracelet_artifacts.terminal import console as _console


def _size(num: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num < 1024 or unit == "TB":
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.1f} {unit}"
        num /= 1024
    return f"{num:.1f} TB"


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def _store(path: str | None) -> Any:
    from tracelet_artifacts.settings import TraceletSettings
    from tracelet_artifacts.store.embedded import EmbeddedStore

    settings = TraceletSettings()
    root = Path(path) if path else settings.store_path
    if settings.catalog_url is None and not (root / "catalog.db").is_file():
        where = "no such folder" if not root.exists() else "no catalog.db in it"
        raise ArtifactStoreNotFoundError(
            f"No store at {str(root.absolute())!r} ({where}); pass --store PATH or set TRACELET_STORE_PATH "
            "to the folder a run logged into (a run creates its store on the first log_artifact).")
    return EmbeddedStore.from_settings(settings, root)


def _split_ref(ref: str) -> tuple[str, str]:
    """``NAME``, ``NAME:v3`` or ``NAME@alias`` → (name, version or alias); an empty part is refused."""
    from tracelet_artifacts.store.service import parse_key

    return parse_key(ref)


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
store_option = click.option("--store", "store_path", envvar="TRACELET_STORE_PATH", default=None,
                            help="Store folder (default: TRACELET_STORE_PATH or ./.tracelet).")


@click.group(cls=TraceletGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tracelet-artifacts")
def main() -> None:
    """Versioned ML artifacts: list, inspect, fetch and deliver what your runs logged."""


@main.command("ls")
@store_option
@click.argument("name", required=False)
@click.option("--type", "type_", help="Only this artifact type (model, checkpoint, image, …).")
@click.option("--label", "labels", multiple=True, help="Only versions with this label (repeatable).")
@click.option("--meta", "metas", multiple=True, help="Only versions with metadata KEY=VALUE (repeatable).")
@click.option("--prefix", help="Only names starting with this.")
@click.option("--contains", help="Only names containing this.")
@click.option("--all-versions", is_flag=True, help="Every version, not only the latest of each name.")
def ls_command(store_path: str | None, name: str | None, type_: str | None, labels: tuple[str, ...],
               metas: tuple[str, ...], prefix: str | None, contains: str | None, all_versions: bool) -> None:
    """List artifacts with their versions, aliases and sizes; with NAME, every version of that artifact."""
    from rich.table import Table

    metadata: dict[str, str] = {}
    for item in metas:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TraceletError(f"--meta {item!r} must look like KEY=VALUE.")
        metadata[key] = value
    store = _store(store_path)
    rows = store.catalog.search(artifact_type=type_, labels=labels, metadata=metadata, prefix=name or prefix,
                                contains=contains, latest_only=not (all_versions or name))
    if name:
        all_versions = True
        rows = [r for r in rows if r.name == name and (not prefix or name.startswith(prefix))]
        if not rows and not store.catalog.names(prefix=name):
            store.get(name)  # the not-found error that says how to list the names
    from tracelet_artifacts.status import version_status

    table = Table("name", "version", "type", "aliases", "labels", "size", "files", "deliveries", "created")
    for r in rows:
        versions = "" if all_versions else f" of {len(store.catalog.versions(r.name))}"
        row_labels = ", ".join(store.catalog.labels(r.name, r.version))
        states = version_status(store.outbox.deliveries(r.name, r.version))
        table.add_row(r.name, r.named_label + versions, r.artifact_type.value, ", ".join(r.aliases), row_labels,
                      _size(r.size_bytes), str(len(r.manifest.entries)),
                      " ".join(dict.fromkeys(s.summary for s in states)) or "-", _when(r.created_at))
    console = _console()
    console.print(table)
    console.print(f"{len(rows)} artifact version(s) in {store.root}")


@main.command("show")
@store_option
@click.argument("ref")
def show_command(store_path: str | None, ref: str) -> None:
    """Show one version: NAME, NAME:v3 or NAME@alias."""
    from rich.table import Table

    name, version = _split_ref(ref)
    store = _store(store_path)
    record = store.get(name, version)
    manifest = record.manifest
    console = _console()
    named = f" ({record.version_name})" if record.version_name else ""
    console.print(f"[bold]{record.ref}[/bold]{named}  type={record.artifact_type.value}  digest={record.digest}")
    console.print(f"aliases: {', '.join(record.aliases) or '-'}   created: {_when(record.created_at)}   "
                  f"size: {_size(record.size_bytes)}")
    from tracelet_artifacts.status import durability_status

    state, meaning = durability_status(record, bucket=store.blobs.durable_when_settled)
    console.print(f"durability: {state} ({meaning})")
    if manifest.description:
        console.print(f"description: {manifest.description}")
    labels = store.catalog.labels(record.name, record.version)  # logged with it, and added later ("evicted")
    if labels:
        console.print(f"labels: {', '.join(labels)}")
    if manifest.metadata:
        console.print(f"metadata: {dict(manifest.metadata)}")
    if manifest.model:
        console.print(f"model: {manifest.model.framework} {manifest.model.class_name} at {manifest.model.path}")
    table = Table("path", "size", "digest", "mime", "text")
    for e in manifest.entries:
        table.add_row(e.path, _size(e.size), e.digest[:23] + "…", e.mime, "yes" if e.is_text else "no")
    console.print(table)
    for reference in manifest.references:
        console.print(f"reference: {reference.uri} ({_size(reference.size_bytes or 0)})")
    _print_deliveries(console, store, record)
    console.print("versions: " + ", ".join(v.named_label for v in store.catalog.versions(record.name)))


def _print_deliveries(console: Any, store: Any, record: Any) -> None:
    """Per backend: where to open it, then each entry uploaded / referenced / not held, or pending / failed."""
    from rich.markup import escape
    from rich.table import Table

    from tracelet_artifacts.status import version_status

    statuses = version_status(store.outbox.deliveries(record.name, record.version))
    if not statuses:
        console.print("deliveries: none (kept in the embedded store only)")
        return
    several_runs = len({s.run_id for s in statuses}) > 1
    table = Table("backend", "state", "entry", "detail")
    for status in statuses:
        label = f"{status.backend} (run {status.run_id[:8]})" if several_runs else status.backend
        console.print(f"{escape(label)}: {status.state}"
                      + (f"  open: {escape(status.locator)}" if status.locator else "")
                      + (f"  locally: {escape(status.view_command)}" if status.view_command else ""))
        for line in status.entries:
            table.add_row(escape(label), line.state, escape(line.path), escape(line.detail))
    if table.row_count:
        console.print(table)


@main.command("get")
@store_option
@click.argument("ref")
@click.argument("dest", type=click.Path(file_okay=False))
@quiet_option
def get_command(store_path: str | None, ref: str, dest: str, quiet: bool) -> None:
    """Write a version's files (NAME[:VERSION|@ALIAS]) under DEST, checking every digest.

    A missing or corrupt blob is re-fetched from a backend that received the version and repaired first.
    One progress bar for the whole version (bytes, rate, time left) is shown on stderr when it is a
    terminal, unless --quiet.
    """
    from tracelet_artifacts.repair import fetch_verified
    from tracelet_artifacts.settings import TraceletSettings
    from tracelet_artifacts.terminal import transfer_bar, writable_folder

    name, version = _split_ref(ref)
    store = _store(store_path)
    record = store.get(name, version)
    writable_folder(Path(dest), "destination", "choose a DEST folder you can write to")
    files = len(record.manifest.entries)
    with transfer_bar(quiet=quiet) as bar:
        task = bar.add_task(f"{record.ref} ({files} file(s))", total=record.size_bytes, left="")

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        paths = fetch_verified(store, name, record.version, dest, options=TraceletSettings().backend_options,
                               progress=show)
    click.echo(f"{record.ref}: {len(paths)} file(s), {_size(record.size_bytes)} written to {dest} (digests verified)")


@main.command("verify")
@store_option
@click.argument("ref", required=False)
@click.option("--repair", "repair_", is_flag=True,
              help="Restore bad blobs from the backends that received each version (per the catalog's receipts).")
def verify_command(store_path: str | None, ref: str | None, repair_: bool) -> None:
    """Re-hash every blob of every version (or of NAME, or of NAME:VERSION) and report missing or corrupt ones."""
    from rich.table import Table

    from tracelet_artifacts.repair import BlobState, RepairReport, check_version, repair_version
    from tracelet_artifacts.settings import TraceletSettings

    store = _store(store_path)
    if ref and (":" in ref or "@" in ref):
        records = [store.get(*_split_ref(ref))]
    else:
        records = [v for name in ([ref] if ref else store.catalog.names()) for v in store.catalog.versions(name)]
        if ref and not records:
            store.get(ref)  # raises the not-found error that lists what exists
    seen: dict[str, BlobState | None] = {}
    table = Table("version", "path", "blob", "state", "outcome")
    unrepaired = 0
    for record in records:
        problems = check_version(store, record, seen)
        if not problems:
            continue
        report = (repair_version(store, record.name, record.version, options=TraceletSettings().backend_options,
                                 problems=problems) if repair_ else RepairReport(record.ref, problems))
        for problem in problems:
            if problem.path in report.repaired:
                seen[problem.digest], outcome = None, f"repaired from {report.repaired[problem.path]}"
            else:
                unrepaired += 1
                moved = problem.path in report.quarantined
                outcome = "no backend holds a copy" + ("; moved to blobs/corrupt/" if moved else "")
                outcome = outcome if repair_ else "-"
            table.add_row(record.ref, problem.path, problem.digest[:19] + "…", problem.state, outcome)
    console = _console()
    if table.row_count:
        console.print(table)
    console.print(f"Checked {len(records)} version(s), {len(seen)} blob(s): {table.row_count} bad entr(ies), "
                  f"{table.row_count - unrepaired} repaired.")
    if unrepaired:
        hint = ("log those artifacts again from their source files" if repair_
                else "run `tracelet-artifacts verify --repair` to restore them from the backends that hold a copy")
        raise TraceletError(f"{unrepaired} entr(ies) are missing or corrupt; {hint}.")


@main.command("sync")
@store_option
@click.option("--timeout", type=float, default=600.0, show_default=True, help="Seconds to wait for deliveries.")
@click.option("--include-live", is_flag=True, help="Also deliver for runs whose process still runs.")
@quiet_option
def sync_command(store_path: str | None, timeout: float, include_live: bool, quiet: bool) -> None:
    """Deliver what earlier runs left in the outbox (failed, pending or interrupted deliveries).

    A bar per run on stderr (bytes delivered, rate, deliveries left) when it is a terminal, unless --quiet.
    """
    from tracelet_artifacts.delivery import sync_outbox
    from tracelet_artifacts.settings import TraceletSettings
    from tracelet_artifacts.terminal import DeliveryBar

    store = _store(store_path)
    with DeliveryBar(quiet=quiet, delay_s=0.0) as bar:
        results = sync_outbox(store, TraceletSettings().backend_options, timeout=timeout, include_live=include_live,
                              watch=lambda run, counts: bar.update(counts, f"run {run[:12]}"))
    if not results:
        click.echo("Nothing to deliver.")
        return
    failed = 0
    for run_id, result in results.items():
        click.echo(f"run {run_id[:12]}: {result.done} done, {result.pending} pending, {result.failed} failed")
        failed += result.pending + result.failed
    if failed:
        raise TraceletError(f"{failed} delivery(ies) could not be completed; see the log above and run sync again.")


@main.command("gc")
@store_option
@click.option("--grace", type=float, default=0.0, show_default=True,
              help="Also keep unreferenced blobs modified in the last SECONDS (not needed for safety: gc never "
                   "collects a blob a concurrent writer stored after it started).")
@click.option("--dry-run", is_flag=True, help="Only report what would be removed.")
@click.option("--cache", "cache_unused_s", type=float, default=None, metavar="SECONDS",
              help="Team store: also drop this machine's cached copies unused for SECONDS (the bucket keeps them).")
def gc_command(store_path: str | None, grace: float, dry_run: bool, cache_unused_s: float | None) -> None:
    """Remove blobs that no version references (safe while other processes log)."""
    if grace < 0:
        raise TraceletError(f"--grace {grace:g}: use a number of seconds ≥ 0.")
    store = _store(store_path)
    count, size = store.gc(grace_s=grace, dry_run=dry_run)
    click.echo(f"{'Would remove' if dry_run else 'Removed'} {count} blob(s), {_size(size)}.")
    if cache_unused_s is not None:
        count, size = store.blobs.trim_cache(unused_for_s=cache_unused_s, dry_run=dry_run)
        click.echo(f"{'Would drop' if dry_run else 'Dropped'} {count} cached cop(ies), {_size(size)}.")


@main.command("migrate")
@store_option
@click.option("--dry-run", is_flag=True, help="Only count what would be renamed.")
def migrate_command(store_path: str | None, dry_run: bool) -> None:
    """Name the blobs stored before BLAKE3 by their BLAKE3 keys (optional: mixed stores work as they are)."""
    from tracelet_artifacts.store.rekey import rekey

    store = _store(store_path)
    report = rekey(store, dry_run=dry_run)
    verb = "Would rename" if dry_run else "Renamed"
    click.echo(f"{verb} {report.blobs} blob(s) ({_size(report.bytes)}) named by SHA-256 to their BLAKE3 keys; "
               f"{report.versions} version(s) {'would name' if dry_run else 'now name'} them"
               + ("." if dry_run else f"; removed {report.removed} old name(s)."))
    if report.missing:
        raise TraceletError(f"{len(report.missing)} blob(s) named by SHA-256 are missing or corrupt and were left as "
                            "they are; run `tracelet-artifacts verify --repair` first.")


@main.command("rm")
@store_option
@click.argument("ref")
@click.option("--force", is_flag=True, help="Delete even while an alias points at it or a later run consumed it.")
def rm_command(store_path: str | None, ref: str, force: bool) -> None:
    """Delete one version, NAME:VERSION (its blobs go at the next `gc`)."""
    name, version = _split_ref(ref)
    if ":" not in ref and "@" not in ref:
        raise TraceletError(f"rm {ref!r}: name the version to delete, e.g. {ref}:v1.")
    record = _store(store_path).remove_version(name, version, force=force)
    click.echo(f"Deleted {record.ref} ({_size(record.size_bytes)}); `tracelet-artifacts gc` frees its blobs.")


@main.command("lineage")
@store_option
@click.argument("ref")
@click.option("--up", "direction", flag_value="up", default=True, help="Where it came from (default).")
@click.option("--down", "direction", flag_value="down", help="What used it.")
@click.option("--both", "direction", flag_value="both", help="Both ways.")
@click.option("--depth", type=click.IntRange(1, 100), default=3, show_default=True, help="Runs away at most.")
@click.option("--limit", type=click.IntRange(1, 100000), default=200, show_default=True, help="Nodes at most.")
@click.option("--format", "fmt", type=click.Choice(["tree", "json", "dot"]), default="tree", show_default=True)
def lineage_command(store_path: str | None, ref: str, direction: str, depth: int, limit: int, fmt: str) -> None:
    """The runs and versions a version came from (--up) or that used it (--down): NAME:VERSION or NAME@ALIAS."""
    from tracelet_artifacts.lineage_view import render

    name, version = _split_ref(ref)
    store = _store(store_path)
    record = store.get(name, version)
    click.echo(render(store.lineage.graph(record.name, record.version, direction=direction, depth=depth,
                                          limit=limit), fmt))


@main.command("prune")
@store_option
@click.argument("names", nargs=-1)
@click.option("--keep-last", type=click.IntRange(min=1), default=None, help="Keep the last N versions.")
@click.option("--keep-days", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Keep versions younger than D days.")
@click.option("--keep-best", type=click.IntRange(min=1), default=None, help="Keep the best K by --by.")
@click.option("--by", "best_by", default=None, metavar="KEY", help="The metadata key --keep-best ranks by.")
@click.option("--min", "lower_is_better", is_flag=True, help="With --keep-best: lower is better (a loss).")
@click.option("--no-keep-aliased", is_flag=True, help="Aliased versions are not kept for being aliased.")
@click.option("--dry-run", is_flag=True, help="Show what would be removed (with sizes); remove nothing.")
@click.option("--ci-cache", "ci_cache", type=click.Path(file_okay=False), default=None,
              help="Prune this CI artifact cache folder instead of the store.")
def prune_command(store_path: str | None, names: tuple[str, ...], keep_last: int | None, keep_days: float | None,
                  keep_best: int | None, best_by: str | None, lower_is_better: bool, no_keep_aliased: bool,
                  dry_run: bool, ci_cache: str | None) -> None:
    """Remove the versions a retention policy does not keep: the settings' rules (TRACELET_RETENTION), or the
    rule given here for NAMES (every name when none is given), then collect their blobs."""
    from tracelet_artifacts.cli_prune import prune

    given = {"keep_last": keep_last, "keep_days": keep_days, "keep_best": keep_best, "best_by": best_by}
    one_off = {k: v for k, v in given.items() if v is not None}
    if one_off and (lower_is_better or no_keep_aliased):
        one_off.update(best_mode="min" if lower_is_better else "max", keep_aliased=not no_keep_aliased)
    elif lower_is_better or no_keep_aliased:
        raise TraceletError("--min and --no-keep-aliased change a rule given here: add --keep-last, --keep-days "
                            "or --keep-best.")
    prune(lambda: _store(store_path), names, one_off or None, dry_run=dry_run, ci_cache=ci_cache, console=_console())


@main.command("alias")
@store_option
@click.argument("ref")
@click.argument("alias")
def alias_command(store_path: str | None, ref: str, alias: str) -> None:
    """Point ALIAS (e.g. best, prod) at a version: NAME:VERSION. ``latest`` is the store's own and moves by itself."""
    from tracelet_artifacts.store.catalog import LATEST

    if alias == LATEST:
        raise TraceletError(f"'{LATEST}' is the store's own alias: it always points at the newest version and "
                            "cannot be moved by hand; use another alias (e.g. best, prod).")
    name, version = _split_ref(ref)
    record = _store(store_path).catalog.set_alias(name, alias, version)
    click.echo(f"{name}@{alias} -> {record.label}")


@main.command("watch")
@store_option
@click.argument("dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--backend", "backends", multiple=True, help="Deliver to this backend too (repeatable).")
@click.option("--pattern", "patterns", multiple=True, help="Only files matching this glob, e.g. '*.ckpt' (repeatable).")
@click.option("--settle", type=float, default=None,
              help="Seconds a file must stay unchanged where no close is seen (default: TRACELET_WATCH_SETTLE_S or 1).")
@click.option("--input", "inputs", multiple=True, metavar="REF|FILE",
              help="What the outputs are made from: NAME:VERSION, NAME@ALIAS or a file the store holds (repeatable; "
                   "default: TRACELET_WATCH_INPUTS). Recorded as this run's inputs (lineage).")
def watch_command(store_path: str | None, dirs: tuple[str, ...], backends: tuple[str, ...],
                  patterns: tuple[str, ...], settle: float | None, inputs: tuple[str, ...]) -> None:
    """Version every complete file written under DIR... until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from tracelet_artifacts.experiment import Experiment
    from tracelet_artifacts.hooks.watcher import ArtifactWatcher, CapturedFile  # names the extra if watchdog is missing
    from tracelet_artifacts.settings import TraceletSettings

    for folder in dirs:
        if not Path(folder).is_dir():
            why = "is a file, not a folder" if Path(folder).exists() else "does not exist"
            raise TraceletError(f"cannot watch {folder!r}: it {why}; create the folder first "
                                "(the command watches folders that a run writes into).")
    settings = TraceletSettings()
    if store_path:
        settings = settings.model_copy(update={"store_path": Path(store_path)})

    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def report(item: CapturedFile) -> None:
        click.echo(f"captured {item.name} ({item.artifact_type.value}, {_size(item.size)}, {item.reason})")

    try:
        experiment = Experiment("watch", backend=list(backends) or None, automagic_artifacts=False,
                                settings=settings).start()
        try:
            watcher = ArtifactWatcher(dirs, patterns=list(patterns) or None, experiment=experiment,
                                      settle_s=settle, callback=report, inputs=list(inputs) or None).start()
            click.echo(f"Watching {', '.join(dirs)} (store {experiment.store.root}); Ctrl-C to stop.", err=True)
            while not stopping.wait(0.2):
                pass
            click.echo("Stopping: last sweep of the folders, then delivering.", err=True)
            captured = watcher.stop()
        finally:
            result = experiment.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    left = result.pending + result.failed if result else 0
    pending = f", {left} delivery(ies) left in the outbox for `tracelet-artifacts sync`" if left else ""
    click.echo(f"{len(captured)} file(s) captured{pending}.")


@main.command("doctor")
@store_option
@click.option("--backend", "backends", multiple=True,
              help="Only this backend (repeatable; default: TRACELET_BACKENDS, else every installed backend).")
@click.option("--experiment", default="default", show_default=True,
              help="The experiment name to resolve for (names MLflow experiments, W&B projects, ClearML tasks).")
def doctor_command(store_path: str | None, backends: tuple[str, ...], experiment: str) -> None:
    """Where each backend's data would go, and where each value came from (explicit option, TRACELET_*,
    the SDK's own configuration, or the embedded default)."""
    from tracelet_artifacts.backends.base import RunContext
    from tracelet_artifacts.backends.registry import known
    from tracelet_artifacts.settings import TraceletSettings, option_sources

    settings = TraceletSettings()
    if store_path:
        settings = settings.model_copy(update={"store_path": Path(store_path)})
    root = Path(settings.store_path).absolute()
    catalog = "(TRACELET_CATALOG_URL)" if settings.catalog_url else str(root / "catalog.db")
    click.echo(f"store: {root}  catalog: {catalog}  blobs: {settings.blob_url or root / 'blobs'}")
    names = list(backends) or list(settings.backends) or [n for n in known() if n != "local"]
    sources = option_sources(settings.backend_options)
    run = RunContext("doctor", experiment, root)
    for name in names:
        click.echo(_describe_backend(name, settings.backend_options.get(name, {}), sources.get(name, {}), run))


def _describe_backend(name: str, options: Any, sources: Any, run: Any) -> str:
    """The doctor's paragraph for one backend (its target, or why it cannot be used)."""
    from tracelet_artifacts.backends import registry
    from tracelet_artifacts.redact import redact_text

    spec = registry.known().get(name)
    if spec is None:
        raise TraceletError(f"Unknown backend {name!r}; known backends: {', '.join(sorted(registry.known()))}.")
    if not registry.is_installed(name):
        return f"\n{name}: not installed ({spec.install or f'pip install {spec.sdk}'})"
    adapter = registry.create(name, options)
    adapter.option_sources = dict(sources)
    try:
        target = adapter.resolve_target(run)
    except TraceletError as exc:
        return f"\n{name}: cannot be used as configured: {exc}"
    lines = [f"\n{name}: {target.where}" + ("  [embedded default]" if target.embedded_default else "")]
    if target.active_run:
        lines.append(f"  joins: {target.active_run}")
    width = max((len(key) for key in target.settings), default=0)
    lines += [f"  {key:<{width}}  {redact_text(setting.value)}   (from {setting.source})"
              for key, setting in target.settings.items()]
    if target.view:
        lines.append(f"  see it locally: {target.view}")
    if target.change:
        lines.append(f"  to change: {target.change}")
    return "\n".join(lines)


@main.command("diff")
@store_option
@click.argument("ref_a")
@click.argument("ref_b")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option("--no-contents", is_flag=True, help="Compare entries, metadata and aliases only; open no file.")
@click.option("--fail-on-regression", is_flag=True, help="Exit with status 1 when a metric regressed.")
def diff_command(store_path: str | None, ref_a: str, ref_b: str, as_json: bool, no_contents: bool,
                 fail_on_regression: bool) -> None:
    """What changed from version A to version B (NAME:v1 NAME:v2, or NAME@alias): entries, metadata,
    aliases, config keys, metric deltas with a regression verdict, and state-dict tensors."""
    import json

    from tracelet_artifacts.diff import diff_versions

    for ref in (ref_a, ref_b):  # an empty version or alias is refused before the store opens
        _split_ref(ref)
    diff = diff_versions(_store(store_path), ref_a, ref_b, contents=not no_contents)
    if as_json:
        click.echo(json.dumps(diff.to_dict(), indent=2, default=str))
    else:
        from tracelet_artifacts.diff.text import print_diff

        print_diff(diff, _console())
    if fail_on_regression and diff.regressions:
        raise SystemExit(1)


@main.command("ui")
@store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8700, show_default=True, help="Port to listen on.")
@click.option("--token", envvar="TRACELET_UI_TOKEN", default=None,
              help="Require this token (Bearer header, cookie or ?token=) on every request (or TRACELET_UI_TOKEN).")
def ui_command(store_path: str | None, host: str, port: int, token: str | None) -> None:
    """Serve a read-only web view of the store (artifacts, versions, previews, diffs, CI trends)."""
    try:
        from tracelet_artifacts.ui.security import check_bind
        from tracelet_artifacts.ui.server import serve
    except ImportError as exc:
        raise TraceletError(f"The web view needs {exc.name}: pip install 'tracelet-artifacts[ui]'.") from exc
    check_bind(host, token)  # before opening the store: a refused host fails at once
    store = _store(store_path)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving {store.catalog.location} read-only at http://{shown}:{port}/"
               + (" (open it once with ?token=YOUR_TOKEN)" if token else "") + "; Ctrl-C to stop.", err=True)
    serve(store, host=host, port=port, token=token)


def _mount_ci() -> None:
    try:
        from tracelet_artifacts.ci.cli import ci
    except ImportError:  # the CI bridge is optional at run time
        return
    main.add_command(ci)


_mount_ci()

if __name__ == "__main__":  # pragma: no cover
    main()
