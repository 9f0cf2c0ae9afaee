"""c10d from C++ (lib/train/distributed.h): 2 and 3 ranks with Gloo on localhost, launched with
torchrun's and Slurm's environment variables; a rank that dies or hangs makes the others fail
with a clear message within the timeout; malformed variables are refused."""
import json
import os
import socket
import subprocess
import time

import pytest

from mrcnn_testing import TEST_BIN_DIR

HELPER = TEST_BIN_DIR / "dist_check"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world, *args, slurm=False, port=None):
    port = port or free_port()
    procs = []
    for rank in range(world):
        env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        env.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"})
        if slurm:
            env.update({"SLURM_NTASKS": str(world), "SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank)})
        else:
            env.update({"WORLD_SIZE": str(world), "RANK": str(rank), "LOCAL_RANK": str(rank)})
        procs.append(subprocess.Popen([str(HELPER), *args], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append((p.returncode, out, err))
    return results


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("slurm", [False, True], ids=["torchrun-env", "slurm-env"])
def test_collectives_agree_on_every_rank(world, slurm):
    results = launch(world, slurm=slurm)
    for code, out, err in results:
        assert code == 0, err
    records = [json.loads(out.strip().splitlines()[-1]) for _, out, _ in results]
    for rank, r in enumerate(records):
        assert r["rank"] == rank and r["world"] == world
        assert r["launcher"] == ("slurm" if slurm else "torchrun")
        assert r["names"] == [f"rank{k}" for k in range(world)]
        assert r["broadcast"] == [0, 1, 2, 3, 4, 5]  # rank 0's values everywhere
        for k, grad in enumerate(r["grads"]):
            if k < 4:
                expected = (k + 1) * sum(q + 1 for q in range(world)) / world
            else:  # rank 0 had no gradient for this one: it counts as zeros
                expected = 5 * sum(q + 1 for q in range(1, world)) / world
            assert grad == pytest.approx([expected] * (3 + k), rel=1e-6)


@pytest.mark.parametrize("mode", ["--exit-after-join", "--hang-after-join"])
def test_a_dead_or_hung_rank_stops_the_others_within_the_timeout(mode):
    start = time.monotonic()
    port = free_port()
    procs = []
    for rank in range(3):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "3",
               "RANK": str(rank), "LOCAL_RANK": str(rank), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([str(HELPER), "--timeout-ms", "3000", mode, "1"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for rank in (0, 2):
        _, err = procs[rank].communicate(timeout=60)
        assert procs[rank].returncode == 2, err
        assert "another rank died or hangs" in err
        assert f"rank {rank}" in err
    assert time.monotonic() - start < 30  # 3 s timeout plus start-up, never a hang
    procs[1].kill()
    procs[1].communicate()


@pytest.mark.parametrize("env, message", [
    ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE='two'"),
    ({"WORLD_SIZE": "2", "RANK": "2"}, "rank 2 is not below the world size 2"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_PORT": "70000"}, "MASTER_PORT=70000"),
    ({"SLURM_NTASKS": "2", "SLURM_PROCID": "-1"}, "SLURM_PROCID='-1'"),
])
def test_malformed_launcher_variables_are_refused(env, message):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "SLURM_NTASKS", "SLURM_PROCID")}
    result = subprocess.run([str(HELPER)], env={**clean, **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
