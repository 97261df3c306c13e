import os
import subprocess
import sys

from agent_forge.threading_env import DEFAULT_SPINCOUNT, apply_wait_default


def test_the_spin_cap_is_set_when_the_user_chose_nothing():
    env: dict[str, str] = {}
    assert apply_wait_default(env) is True
    assert env == {"GOMP_SPINCOUNT": DEFAULT_SPINCOUNT}


def test_a_users_own_choice_is_kept():
    for chosen in ({"GOMP_SPINCOUNT": "30000000000"}, {"OMP_WAIT_POLICY": "ACTIVE"}, {"OMP_WAIT_POLICY": "passive"}):
        env = dict(chosen)
        assert apply_wait_default(env) is False
        assert env == chosen


# Runs `import agent_forge` and then a part of it that loads torch (the model files) in a fresh
# interpreter, and reports GOMP_SPINCOUNT at the moment the first torch module is requested (then
# exits, so the test never pays for loading torch). The package loads its names lazily, so
# `import agent_forge` alone loads no torch.
_AT_TORCH_IMPORT = """
import os, sys
class StopAtTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            print(os.environ.get("GOMP_SPINCOUNT", "-"), flush=True)
            os._exit(0)
sys.meta_path.insert(0, StopAtTorch())
import agent_forge
import agent_forge.models.trm
print("torch was never imported", flush=True)
"""


def _spincount_seen_by_torch(extra: dict[str, str]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")} | extra
    out = subprocess.run([sys.executable, "-c", _AT_TORCH_IMPORT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_importing_the_package_sets_the_default_before_torch_loads():
    assert _spincount_seen_by_torch({}) == DEFAULT_SPINCOUNT
    assert _spincount_seen_by_torch({"OMP_WAIT_POLICY": "ACTIVE"}) == "-"
