"""Every artifact path is named once (common/artifacts.py): the configs and run.sh agree with it."""
import json
from pathlib import Path

from common import artifacts
from common.config import read_json_tree

ROOT = Path(__file__).resolve().parent.parent


def run_checkpoint(config: str, name: str | None = None) -> str:
    """logs/<stage>/<name>/best.pt of the run a config trains (`name` overrides the config's)."""
    tree = read_json_tree(ROOT / config)
    return f"{artifacts.LOGS}/{tree['stage']}/{name or tree['name']}/best.pt"


def test_configs_agree_with_the_named_artifacts():
    assert run_checkpoint("configs/asr/clean.json") == artifacts.ASR_CLEAN
    assert read_json_tree(ROOT / "configs/asr/other.json")["init_from"] == artifacts.ASR_CLEAN
    assert json.loads((ROOT / "configs/asr/experiments/units.json").read_text())["lm"] == artifacts.LM_ARPA
    assert run_checkpoint("configs/kws/baseline.json") == artifacts.KWS_BASELINE
    assert run_checkpoint("configs/kws/distill.json") == artifacts.KWS_STUDENT
    assert run_checkpoint("configs/kws/distill.json", name="pruned") == artifacts.KWS_PRUNED  # kws.distill's name


def test_run_sh_reads_every_artifact_from_common_artifacts():
    shell = {}
    for line in artifacts.shell_assignments().splitlines():
        name, _, value = line.partition("=")
        shell[name] = value
    assert shell == artifacts.ARTIFACTS and "LM_ARPA" in shell
    run_sh = (ROOT / "run.sh").read_text()
    for path in artifacts.ARTIFACTS.values():
        code = [line for line in run_sh.splitlines() if path in line and not line.lstrip().startswith('"')]
        assert not code, f"run.sh writes {path} itself instead of reading it from common.artifacts: {code}"
