"""Phase: the API key must appear nowhere but in configuration.json files.

Runs last: it scans every command output of the run, every file the run left (state
files, crash reports, warehouses, CLI home files), the `fivetran package` zip and the
files `deploy.sh --dry-run` stages. A positive control proves the scanner finds the key
where it is meant to be.
"""

import base64
import secrets
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

from bench.soak.harness import Soak
from bench.soak.results import Phase
from bench.soak.settings import CHECKPOINT_INTERVAL, CLI_TIMEOUT_S, PAGE_SIZE
from devkit.sdk_cli import REPO_ROOT, fivetran_executable, run_command

UNREACHABLE_URL = "http://127.0.0.1:9"  # packaging never calls the API


def package_project(soak: Soak) -> tuple[Path, subprocess.CompletedProcess]:
    configuration = {
        "api_key": soak.secret,
        "base_url": UNREACHABLE_URL,
        "page_size": str(PAGE_SIZE),
        "checkpoint_interval": str(CHECKPOINT_INTERVAL),
    }
    project = soak.project("package", configuration)
    result = run_command(
        [fivetran_executable(), "package", project], project, soak.env, CLI_TIMEOUT_S
    )
    soak.outputs.append((f"package {project.name}", result.stdout))
    return project, result


def scan_zip(soak: Soak, phase: Phase, archive: Path) -> list:
    """Names of zip entries holding the secret; also checks configuration.json is left out."""
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        leaking = [name for name in names if soak.secret.encode() in bundle.read(name)]
    phase.check(
        not any(Path(name).name == "configuration.json" for name in names),
        "the package zip contains configuration.json",
    )
    phase.details.append(f"package zip entries: {', '.join(sorted(names))}")
    return leaking


def run_deploy_dry_run(soak: Soak, phase: Phase, project: Path) -> list:
    """deploy.sh --dry-run, if the repository has it: its output and staged files stay clean.

    The script deletes its staging folder on exit, so the staged files are checked by name
    from its listing, and by content through the repository files they are copies of.
    """
    script = REPO_ROOT / "deploy.sh"
    if not script.exists():
        phase.details.append("deploy.sh: not in the repository yet, dry-run check skipped")
        return []
    account_key = fake_fivetran_key()
    command = [str(script), "--dry-run", "--account", "soak", "--destination", "soak_dest"]
    command += ["--connection", "soak_conn", "--config", str(project / "configuration.json")]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**soak.env, "FIVETRAN_API_KEY": account_key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    soak.outputs.append(("deploy.sh --dry-run", result.stdout))
    phase.check(result.returncode == 0, f"deploy.sh --dry-run exited {result.returncode}")
    leaks = ["deploy.sh output: Fivetran key"] if account_key in result.stdout else []
    staged = staged_files(result.stdout)
    phase.check(bool(staged), "deploy.sh --dry-run listed no staged files")
    phase.check("configuration.json" not in staged, "deploy.sh stages configuration.json")
    for name in staged:
        source = REPO_ROOT / name
        if source.is_file() and soak.secret.encode() in source.read_bytes():
            leaks.append(f"deploy.sh staged file {name}")
    phase.details.append(
        f"deploy.sh --dry-run: exit {result.returncode}, staged {', '.join(staged) or 'nothing'}"
        f", Fivetran key masked: {account_key not in result.stdout}"
    )
    return leaks


def fake_fivetran_key() -> str:
    """A well-formed (base64 of key:secret), distinctive Fivetran key that must stay masked."""
    pair = f"soak-fivetran-{secrets.token_hex(4)}:{secrets.token_hex(12)}"
    return base64.b64encode(pair.encode()).decode()


def staged_files(output: str) -> list:
    """The file names deploy.sh --dry-run lists between 'would hold:' and the command."""
    if "would hold:" not in output:
        return []
    listing = output.split("would hold:", 1)[1].split("and this command", 1)[0]
    return sorted(line.strip() for line in listing.splitlines() if line.strip())


def files_under(folder: Path) -> list:
    return [path for path in folder.rglob("*") if path.is_file()]


def run_secret_scan(soak: Soak, phase: Phase) -> None:
    project, packaged = package_project(soak)
    phase.check(packaged.returncode == 0, f"fivetran package exited {packaged.returncode}")
    archives = sorted((project / "files").glob("*.zip"))
    phase.check(bool(archives), "fivetran package wrote no zip")
    leaks = [f"{a.name}:{name}" for a in archives for name in scan_zip(soak, phase, a)]
    leaks += run_deploy_dry_run(soak, phase, project)
    leaks += [label for label, text in soak.outputs if soak.secret in text]
    files = files_under(soak.work)
    configs = [p for p in files if p.name == "configuration.json"]
    scanned = [p for p in files if p.name != "configuration.json"]
    secret = soak.secret.encode()
    leaks += [str(p.relative_to(soak.work)) for p in scanned if secret in p.read_bytes()]
    # Positive control: the scanner must find the key where it is meant to be.
    found = sum(secret in p.read_bytes() for p in configs)
    phase.check(found > 0, "the scan found the key in no configuration.json: scanner broken")
    kinds = Counter(kind_of(path) for path in scanned)
    phase.cases = len(soak.outputs) + len(scanned)
    phase.leaks = len(leaks)
    phase.figures = {"leaking": leaks, "files": dict(kinds)}
    phase.details += [
        f"scanned {len(soak.outputs)} command outputs and {len(scanned)} files "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); key found in "
        f"{found}/{len(configs)} configuration.json files (expected: all that hold it)",
        "leaks: " + (", ".join(leaks) if leaks else "none"),
    ]


def kind_of(path: Path) -> str:
    parts = set(path.parts)
    if "crash-reports" in parts:
        return "crash reports"
    if path.name == "state.json":
        return "state files"
    if path.suffix == ".zip":
        return "zips"
    if path.suffix == ".db" or ".wal" in path.suffixes:
        return "warehouses"
    if "home" in parts:
        return "CLI home files"
    return "other files"
