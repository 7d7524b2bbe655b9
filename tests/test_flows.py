"""Prefect flows over DVC: stage order from DVC's graph, the ephemeral run, and a real Prefect
server with a process work pool and worker running the scheduled deployment on a Dask cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import yaml

from tests.support.browser import chromium, keep_screenshot, wait_for_text
from tests.support.project import ROOT, STAGES, copy_project, set_params
from tests.support.servers import free_port

pytestmark = pytest.mark.slow


def test_stage_order_follows_dvc_dependencies():
    from pipelines.flow import needed_by, stage_graph, stage_order

    order = stage_order(ROOT)
    assert sorted(order) == sorted(STAGES)
    # a target runs with what it needs, as `dvc repro train@gan` would
    assert list(needed_by(stage_graph(ROOT), ["train@gan"])) == [
        s for s in order if s in {"index", "download", "downsample", "train@gan"}]
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    producer = {}
    for name, stage in spec.items():
        for out in stage.get("outs", []) + stage.get("metrics", []) + stage.get("plots", []):
            producer[next(iter(out)) if isinstance(out, dict) else out] = name
    for name, stage in spec.items():
        for dep in stage.get("deps", []):
            for path, maker in producer.items():
                if maker != name and (path == dep or path.startswith(f"{dep}/")):
                    assert order.index(maker) < order.index(name), (maker, name)


def test_bad_overrides_fail_before_any_stage(tmp_path):
    project = copy_project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pipelines.flow", "-S", "pretrain.codings=-3"],
                          cwd=project, capture_output=True, text=True, env=_env(project, tmp_path))
    assert proc.returncode == 2
    assert "pretrain.codings: Input should be greater than or equal to 1" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (project / "data/raw").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["-S", "train_gan.replay"], "-S train_gan.replay: write KEY=VALUE, e.g. -S train_gan.replay=true"),
    (["--sweep", "evaluate.k"], "--sweep evaluate.k: write KEY=V1,V2"),
    (["--sweep", "evaluate.k="], "--sweep evaluate.k=: an empty list of values; write evaluate.k=V1,V2"),
    (["train@gan", "render", "trainn_vae"], "no stage named trainn_vae in dvc.yaml; the stages are index, "),
    (["--sweep", "train_gan.minibatch=none,stddev", "-S", "train_gan.loss=hinge"],  # -S in each
     "params.yaml with overrides {'train_gan.loss': 'hinge', 'train_gan.minibatch': 'none'} is "
     "invalid:\n  train_gan.loss: "),
    (["--profile", "gan_mode"], "no profile 'gan_mode'; the profiles are: diffaugment, diffusion, "),
    (["--profile", "gan_modes", "train@gan"], "profile 'gan_modes' is a sweep: it runs whole "
                                              "experiments; name no stages with it"),
    (["--profile", "gan_modes", "-S", "train_gan.loss=hinge"],
     "params.yaml with overrides {'generators': ['gan'], 'train_gan.max_train_images': 20000, "
     "'train_gan.images_seen': 60000, 'train_gan.loss': 'hinge'} is invalid:\n  train_gan.loss: "),
])
def test_an_override_without_a_value_is_one_line_and_exit_2(tmp_path, args, message):
    project = copy_project(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "pipelines.flow", *args], cwd=project,
                          capture_output=True, text=True, env=_env(project, tmp_path))
    assert proc.returncode == 2 and f"error: {message}" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr + proc.stdout


def test_a_prefect_server_that_cannot_start_is_one_line_and_exit_2(tmp_path):
    project = copy_project(tmp_path)
    env = _env(project, tmp_path, PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0")
    proc = subprocess.run([sys.executable, "-m", "pipelines.flow"], cwd=project,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert ("error: Prefect's temporary API server did not start (it did not answer within 0 s); "
            "on a busy machine raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (project / "data/raw").exists()


def test_the_flow_starts_its_own_prefect_server_on_a_busy_machine(built_copy, tmp_path):
    """With none of the test harness's Prefect settings (only its own home), while as many
    processes as cores spin until the flow run begins: under that load Prefect's own 20-s start-up
    limit failed here (exit 2, its message); the flow sets its own. The flow runs one target
    stage: the server is what is tested."""
    env = {k: v for k, v in _env(built_copy, tmp_path).items()
           if not k.startswith("PREFECT_") or k == "PREFECT_HOME"}
    spin = "while True: pass"
    busy = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(os.cpu_count())]
    lines = []
    try:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.flow", "--workers", "1", "index"],
                                cwd=built_copy, env=env, text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        for line in proc.stdout:  # the server answered once the flow run begins
            lines.append(line)
            if "Beginning flow run" in line:
                break
    finally:
        for spinner in busy:
            spinner.kill()
            spinner.wait()
    lines += proc.stdout.readlines()
    assert proc.wait() == 0, "".join(lines)[-3000:]
    stages = [line.split("|")[1].strip() for line in lines if line.startswith("| ")]
    assert stages[1:] == ["index"], "".join(lines)[-3000:]  # the timeline's header, then its stage


def _env(project: Path, tmp_path: Path, **extra: str) -> dict:
    """The flow's environment: its own Prefect home, no Prefect or MLflow server unless given."""
    env = {**os.environ, "PYTHONPATH": str(project), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("PREFECT_API_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    return {**env, **extra}


def overlap(a: dict, b: dict) -> float:
    return min(a["end"], b["end"]) - max(a["start"], b["start"])


class PrefectServer:
    def __init__(self, home: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": self.url,
                    "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}

    def __enter__(self) -> PrefectServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)], env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        while self.proc.poll() is None:  # however long a busy machine takes (pytest-timeout bounds it)
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return self
            except requests.RequestException:
                time.sleep(1)
        raise RuntimeError("prefect server exited before it answered")

    def __exit__(self, *exc) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen) -> None:
    """Ask a process group to stop; one still running after 10 s is killed (the test is over:
    a graceful shutdown has nothing left to save)."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class DaskCluster:
    """A Dask scheduler and two single-threaded workers, as separate processes on loopback: the
    README's commands for a shared cluster, on one machine."""

    def __init__(self, project: Path, env: dict):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.project, self.env = project, env

    def __enter__(self) -> DaskCluster:
        from distributed import Client

        dask = [sys.executable, "-m", "dask"]
        self.procs = [subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
             "--no-dashboard"], cwd=self.project, env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)]
        self.procs.append(subprocess.Popen(
            [*dask, "worker", self.address, "--nworkers", "2", "--nthreads", "1", "--host",
             "127.0.0.1", "--no-dashboard", "--preload", "pipelines.flow"], cwd=self.project,
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))
        try:
            self.client = Client(self.address, timeout=120)
            self.client.wait_for_workers(2, timeout=300)
        except BaseException:
            self._stop()
            raise
        return self

    def executed(self) -> list[int]:
        """How many tasks each worker has run."""
        counts = self.client.run(lambda dask_worker: dask_worker.state.executed_count)
        return sorted(counts.values())

    def __exit__(self, *exc) -> None:
        self.client.close()
        self._stop()

    def _stop(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


def _prefect_ui_shows_the_flow_run(server: PrefectServer, run_id: str, tmp_path: Path) -> None:
    """The Prefect UI's page of the flow run, in headless Chromium: its task runs by stage name,
    and the timeline artifact."""
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "chromium") as driver:
        driver.get(f"http://127.0.0.1:{server.port}/runs/flow-run/{run_id}")
        wait_for_text(driver, "latentlab-pipeline", f"{len(STAGES)} Task runs")
        driver.find_element(By.ID, "task-runs").click()  # the page's tabs
        wait_for_text(driver, f"({len(STAGES)} Completed)", *STAGES)
        keep_screenshot(driver, "prefect-flow-run-tasks")
        driver.find_element(By.ID, "artifacts").click()
        wait_for_text(driver, "pipeline-timeline")
        keep_screenshot(driver, "prefect-flow-run-artifacts")


def test_scheduled_deployment_runs_on_a_worker_and_a_dask_cluster(built_copy, tmp_path,
                                                                  mlflow_server):
    from pipelines.flow import stage_graph

    project = built_copy
    # what the nightly run will find changed: evaluate, then the two scores that read it (each
    # independent of the other), then render
    set_params(project, evaluate={"k": 2})
    with PrefectServer(tmp_path / "prefect") as server:
        env = _env(project, tmp_path, LATENTLAB_TRACKING="1", MLFLOW_TRACKING_URI=mlflow_server.url,
                   **{k: v for k, v in server.env.items() if k.startswith("PREFECT_")})
        prefect = [sys.executable, "-m", "prefect"]
        subprocess.run([*prefect, "work-pool", "create", "test-pool", "--type", "process"],
                       cwd=project, env=env, check=True, capture_output=True)
        with DaskCluster(project, env) as cluster:
            deployed = subprocess.run(
                [sys.executable, "-c",
                 "from pipelines.deploy import deploy; from pathlib import Path; "
                 f"print(deploy('test-pool', project=Path({str(project)!r}), "
                 f"dask_address={cluster.address!r}))"],
                cwd=project, env=env, capture_output=True, text=True)
            assert deployed.returncode == 0, deployed.stderr[-3000:]
            worker = subprocess.Popen([*prefect, "worker", "start", "--pool", "test-pool"],
                                      cwd=project, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                script = (
                    "import asyncio, json\n"
                    "from prefect import get_client\n"
                    "from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId\n"
                    "from prefect.deployments import run_deployment\n"
                    "run = run_deployment('latentlab-pipeline/nightly', timeout=None)\n"
                    "async def details():\n"
                    "    async with get_client() as c:\n"
                    "        d = await c.read_deployment_by_name('latentlab-pipeline/nightly')\n"
                    "        tasks = await c.read_task_runs(flow_run_filter=FlowRunFilter(\n"
                    "            id=FlowRunFilterId(any_=[run.id])))\n"
                    "        return {'id': str(run.id), 'state': run.state.type.value,\n"
                    "                'crons': [s.schedule.cron for s in d.schedules],\n"
                    "                'tasks': {t.name: t.state.type.value for t in tasks},\n"
                    "                'times': {t.name: [t.start_time.timestamp(),\n"
                    "                                   t.end_time.timestamp()] for t in tasks}}\n"
                    "print(json.dumps(asyncio.run(details())))\n")
                run = subprocess.run([sys.executable, "-c", script], cwd=project, env=env,
                                     capture_output=True, text=True)
                executed = cluster.executed()
            finally:
                stop(worker)
        assert run.returncode == 0, run.stderr[-3000:]
        details = json.loads(run.stdout.strip().splitlines()[-1])
        assert details["state"] == "COMPLETED", run.stdout[-2000:]
        assert details["crons"] == ["0 2 * * *"]
        assert details["tasks"] == {stage: "COMPLETED" for stage in STAGES}
        if shutil.which("chromedriver"):
            _prefect_ui_shows_the_flow_run(server, details["id"], tmp_path)
    # every stage ran on the cluster's workers, and both of them had work
    assert sum(executed) == len(STAGES) and min(executed) > 0, executed
    # Prefect's own timeline: the independent stages ran at the same time on the cluster's two
    # workers, and no stage started before the stages it depends on had ended
    times = {stage: {"start": a, "end": b} for stage, (a, b) in details["times"].items()}
    assert overlap(times["score@vae"], times["score@gan"]) > 0, times
    for stage, upstream in stage_graph(project).items():
        assert all(times[stage]["start"] >= times[u]["end"] for u in upstream), (stage, times)
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name("latentlab")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    flow_parents = {r.info.run_id for r in runs
                    if r.data.tags.get("latentlab.pipeline_key", "").startswith("prefect-")}
    assert len(flow_parents) == 1  # one flow run, one parent run
    children = {r.data.tags["latentlab.stage"]: r for r in runs
                if r.data.tags.get("mlflow.parentRunId") in flow_parents}
    # the stages DVC reran: evaluate.k is every score's param too
    assert set(children) == {"evaluate", "score@vae", "score@gan", "render"}
    # the flow closed its parent run once its last stage was done
    [parent] = [r for r in runs if r.info.run_id in flow_parents]
    assert parent.info.status == "FINISHED"
    assert parent.info.end_time >= max(r.info.end_time for r in children.values())
    assert parent.info.run_name == "pipeline digits 8×8×1"


def test_a_second_flow_in_the_same_workspace_stops_at_once_in_one_line(tmp_path):
    from pipelines.flow import workspace_lock

    project = copy_project(tmp_path)
    with workspace_lock(project):  # as a first flow holds it
        proc = subprocess.run([sys.executable, "-m", "pipelines.flow"], cwd=project,
                              capture_output=True, text=True, env=_env(project, tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert f"error: a pipeline is already running in {project} (pid {os.getpid()} on" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "rwlock" not in proc.stderr
    assert not (project / "data/raw").exists()
    with workspace_lock(project):  # released when its holder ends: nothing left to remove
        pass


def test_the_local_dask_cluster_listens_on_loopback_only(tmp_path):
    import psutil
    from distributed import LocalCluster

    from pipelines.flow import task_runner

    kwargs = task_runner(2).cluster_kwargs
    before = {c.laddr for c in psutil.Process().net_connections() if c.status == "LISTEN"}
    with LocalCluster(**{**kwargs, "dashboard_address": "127.0.0.1:0"}):
        listening = {c.laddr for c in psutil.Process().net_connections()
                     if c.status == "LISTEN"} - before
    assert len(listening) >= 3  # the dashboard and each worker's HTTP port
    assert {a.ip for a in listening} == {"127.0.0.1"}, listening
    assert kwargs["dashboard_address"].startswith("127.0.0.1:")
