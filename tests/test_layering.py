"""The layering contracts in pyproject.toml hold for the tree; a tree that breaks one fails lint-imports."""

import configparser
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {contract["name"]: contract for contract in CONFIG["contracts"]}


def lint_imports(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def _write_config(path: Path) -> None:
    """The real contracts as an INI file; the tiny tree lacks the imports the real ignore_imports name."""
    ini = configparser.ConfigParser()
    ini["importlinter"] = {
        "root_packages": "\n".join(CONFIG["root_packages"]),
        "include_external_packages": str(CONFIG["include_external_packages"]),
    }
    for number, contract in enumerate(CONFIG["contracts"]):
        section = {
            key: "\n".join(value) if isinstance(value, list) else str(value)
            for key, value in contract.items()
        }
        ini[f"importlinter:contract:{number}"] = {**section, "unmatched_ignore_imports_alerting": "none"}
    with path.open("w") as file:
        ini.write(file)


def _internal_modules() -> set[str]:
    roots = tuple(CONFIG["root_packages"])
    named = {m for c in CONFIG["contracts"] for m in c["source_modules"] + c["forbidden_modules"]}
    return {m for m in named if m.split(".")[0] in roots} | set(roots)


def _tiny_tree(tmp_path: Path, module: str, source: str) -> None:
    """Every package the contracts name, empty, plus one module with the given source."""
    for package in _internal_modules() | {module.rsplit(".", 1)[0]}:
        directory = tmp_path.joinpath(*package.split("."))
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "__init__.py").touch()
    tmp_path.joinpath(*module.split(".")).with_suffix(".py").write_text(source)


def test_the_real_tree_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "source", "contract"),
    [
        # A pure rule reaching for the database.
        ("tasks.domain.rules", "import sqlalchemy\n", "tasks.domain is pure rules"),
        # A query module reaching up into a flow.
        ("db.queries", "from tasks.flows import payments\n", "db knows nothing of tasks but tasks.domain"),
        # The production CLI importing the emulator.
        ("workers.cli", "from sandbox import stripe_emulator\n", "production code never imports the sandbox"),
        # A flow calling Stripe's SDK or SMTP itself instead of through a gateway.
        ("tasks.flows.payments", "import stripe\n", "only tasks.gateways talks to Stripe and SMTP"),
        ("emails.rendering", "import smtplib\n", "only tasks.gateways talks to Stripe and SMTP"),
    ],
)
def test_a_tree_breaking_a_contract_fails_naming_it(tmp_path, module, source, contract):
    (name,) = [name for name in CONTRACTS if name.startswith(contract)]
    _tiny_tree(tmp_path, module, source)
    _write_config(tmp_path / "layers.ini")
    result = lint_imports(tmp_path, "--config", "layers.ini")
    assert result.returncode != 0
    assert f"{name} BROKEN" in result.stdout, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS) - 1} kept, 1 broken." in result.stdout
