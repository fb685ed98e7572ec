"""Start-up settings and the deployment files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from web.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
FULL = {
    "DATABASE_URL": "postgresql://u@h:5432/d",
    "REDIS_URL": "redis://h:6379/0",
    "SECRET_KEY": "k",
    "PUBLIC_URL": "https://x.example/",
    "SMTP_URL": "smtp://h:25",
}


@pytest.mark.parametrize("missing", sorted(FULL))
def test_missing_required_setting_names_it(missing):
    env = {k: v for k, v in FULL.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load_settings(env)


def test_settings_are_read():
    settings = load_settings({**FULL, "PORT": "8080", "WORKTEAM_MAX_PAGE_SIZE": "50"})
    assert settings["PUBLIC_URL"] == "https://x.example"
    assert settings["PORT"] == 8080 and settings["SCIM_MAX_PAGE_SIZE"] == 50
    with pytest.raises(ConfigError, match="PORT"):
        load_settings({**FULL, "PORT": "eighty"})


def test_development_mode_has_defaults_production_has_none():
    assert load_settings({"WORKTEAM_ENV": "development"})["SECRET_KEY"]
    with pytest.raises(ConfigError):
        load_settings({})


def test_database_url_in_the_usual_form_uses_psycopg3():
    from models.db import sqlalchemy_url

    assert sqlalchemy_url("postgresql://u@h:5432/d") == "postgresql+psycopg://u@h:5432/d"
    assert sqlalchemy_url("postgres://u@h/d") == "postgresql+psycopg://u@h/d"


def test_procfile_has_every_process():
    names = {line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines()
             if line.strip()}
    assert names == {"release", "web", "worker", "beat", "flower"}


def test_every_deployment_and_the_benchmark_run_gunicorn_conf_py(monkeypatch):
    import runpy

    import yaml

    for name in ("WEB_CONCURRENCY", "WEB_THREADS", "WEB_WORKER_CONNECTIONS", "WEB_BIND",
                 "BENCH_GUNICORN_WORKERS", "BENCH_GUNICORN_THREADS",
                 "BENCH_GUNICORN_WORKER_CLASS", "BENCH_GUNICORN_WORKER_CONNECTIONS"):
        monkeypatch.delenv(name, raising=False)
    deployed = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    bench = runpy.run_path(str(ROOT / "bench" / "gunicorn.conf.py"))
    settings = ("workers", "worker_class", "threads", "worker_connections", "keepalive",
                "backlog", "timeout", "graceful_timeout", "accesslog")
    assert {k: bench[k] for k in settings} == {k: deployed[k] for k in settings}
    assert bench["on_starting"].__code__.co_filename == str(ROOT / "gunicorn.conf.py")
    assert deployed["worker_class"] == "gthread" and deployed["bind"] == "127.0.0.1:5000"
    web = {line.split(":", 1)[0]: line for line in (ROOT / "Procfile").read_text().splitlines()}
    assert "gunicorn -c gunicorn.conf.py" in web["web"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["web"]["command"][:3] == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert '"gunicorn", "-c", "gunicorn.conf.py"' in (ROOT / "Dockerfile").read_text()


def test_gunicorn_conf_empties_the_metrics_directory_of_counter_files_only(tmp_path,
                                                                         monkeypatch):
    import runpy
    from types import SimpleNamespace

    (tmp_path / "counter_1.db").write_bytes(b"x")
    (tmp_path / "keep.txt").write_text("not ours")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    deployed = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    deployed["on_starting"](SimpleNamespace(cfg=SimpleNamespace(bind=["127.0.0.1:5999"])))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]

    # Unset: one directory per port (monkeypatch restores the variable afterwards).
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    deployed["on_starting"](SimpleNamespace(cfg=SimpleNamespace(bind=["127.0.0.1:5999"])))
    default = Path("/tmp/workteam-metrics-5999")
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(default)
    assert default.is_dir()
    shutil.rmtree(default)


def test_docker_compose_config_is_accepted():
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True,
                                        check=False).returncode != 0:
        pytest.skip("no docker compose client on this machine")
    result = subprocess.run([docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config",
                             "--quiet"], capture_output=True, text=True, check=False,
                            cwd=ROOT, env={"PATH": "/usr/bin:/bin:/usr/local/bin"})
    assert result.returncode == 0, result.stderr


def test_docker_compose_has_every_service_with_a_health_check():
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat", "flower"} <= set(services)
    for name, service in services.items():
        if name != "migrate":  # one-shot: its health is its exit code
            assert "healthcheck" in service, name
    assert services["migrate"]["command"][-2:] == ["db", "upgrade"]
    for name in ("web", "worker", "beat", "flower"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), port
