"""The three notebooks in a real JupyterLab, run through its menus in headless Chromium.

What a researcher does after ``make lab``, on small data: JupyterLab serves a temporary project
laid out like a clone (a ``pyproject.toml`` naming ``personas``, ``notebooks`` a link to
``personas/notebooks``), and each notebook is opened from the file browser and run with
Run > Run All Cells. The test then checks what the researcher sees: every chart an image,
the run's persona names in 02 and 03, the steps' progress lines, no error or warning output, and
the report in the served project's ``reports/``.

The parameters cell cannot be changed easily through the UI, so the served notebooks are copies
with small-data values injected by papermill (``prepare_only``: injected, not executed); the
output folder keeps its default, ``reports/<run_name>`` in the project folder.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import get_type_hints

import papermill as pm
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01_features", "02_personas", "03_report")
SMALL = {"sample_users": 1500, "sample_size": 1500, "n_fits": 2}
RUN_TIMEOUT_MS = 240_000  # a notebook's cells; UMAP's numba compile takes ~20 s per kernel
SERVER_TIMEOUT_S = 60
# JupyterLab's own settings for the test: every cell in the page (not only those scrolled to),
# no question about news, and no call to the internet.
LAB_SETTINGS = {
    "notebook-extension/tracker": {"windowingMode": "none"},
    "apputils-extension/notification": {"fetchNews": "false"},
}


@pytest.fixture
def project(tmp_path) -> Path:
    """A project folder as in a clone, with the notebooks' small-data copies."""
    root = tmp_path / "project"
    folder = root / "personas" / "notebooks"
    folder.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "personas"\n', encoding="utf-8")
    (root / "notebooks").symlink_to(Path("personas", "notebooks"))
    for name in NOTEBOOKS:
        pm.execute_notebook(
            str(ROOT / "notebooks" / f"{name}.ipynb"),
            str(folder / f"{name}.ipynb"),
            parameters=SMALL,
            prepare_only=True,
            kernel_name="python3",
            progress_bar=False,
        )
    return root


@pytest.fixture
def lab(project, tmp_path):
    """JupyterLab serving ``project`` on 127.0.0.1: its base URL, token and log file.

    Its configuration, data, runtime, settings and workspace folders (and the kernels' IPython
    folder) are temporary, so nothing of this machine's Jupyter set-up takes part.
    ``--allow-root`` only when running as root.
    """
    home = tmp_path / "jupyter"
    for name, values in LAB_SETTINGS.items():
        path = home / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    token = secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={_free_port()}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={project}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = _wait_for_server(server, home / "runtime", token, log_path)
            yield url, token, log_path
        finally:
            server.terminate()  # it shuts its kernels down
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _free_port() -> int:
    """A port free now (the server moves on to another one if it is taken meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(server: subprocess.Popen, runtime: Path, token: str, log: Path) -> str:
    """The server's base URL once it answers, read from the file it writes into its runtime
    folder (which names the port it took)."""
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    info = runtime / f"jpserver-{server.pid}.json"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()}")
        if info.exists():
            try:
                url = json.loads(info.read_text())["url"]
                request = urllib.request.Request(
                    url + "api/status", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(request, timeout=5):
                    return url
            except (OSError, ValueError, KeyError):
                pass  # not written completely, or not answering yet
        time.sleep(0.2)
    pytest.fail(f"JupyterLab did not answer within {SERVER_TIMEOUT_S} s:\n{log.read_text()}")


def _charts(name: str) -> int:
    """Code cells of a notebook that end in a call of a plots function returning a figure."""
    from matplotlib.figure import Figure

    from personas import plots

    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    count = 0
    for cell in cells:
        source = "".join(cell["source"]).strip()
        call = cell["cell_type"] == "code" and re.search(r"plots\.(\w+)\(", source.splitlines()[-1])
        if call and issubclass(get_type_hints(getattr(plots, call.group(1)))["return"], Figure):
            count += 1
    return count


def _run_all_cells(page, name: str):
    """Open notebooks/<name>.ipynb from the file browser, run Run > Run All Cells and wait until
    every code cell has run (an execution count, no ``[*]``) and the kernel is idle. Returns the
    notebook's panel."""
    from playwright.sync_api import expect

    page.locator(".jp-DirListing-item", has_text=f"{name}.ipynb").dblclick()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    expect(tab).to_contain_text(f"{name}.ipynb")
    panel = page.locator(f"[id='{tab.get_attribute('data-id')}']")
    cells = json.loads((ROOT / "notebooks" / f"{name}.ipynb").read_text())["cells"]
    expect(panel.locator(".jp-Notebook .jp-Cell")).to_have_count(len(cells) + 1)  # + injected
    idle = page.get_by_text("Python 3 (ipykernel) | Idle")
    expect(idle).to_be_visible(timeout=60_000)  # its kernel has started
    page.locator(".lm-MenuBar-item", has_text="Run").click()
    page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
    page.wait_for_function(
        """panel => {
            const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0
                && prompts.every(p => /^\\s*\\[\\d+\\]/.test(p.textContent));
        }""",
        arg=panel.element_handle(),
        timeout=RUN_TIMEOUT_MS,
    )
    expect(idle).to_be_visible(timeout=60_000)
    return panel


def test_the_notebooks_run_in_jupyterlab(browser, lab, project, tmp_path):
    from playwright.sync_api import expect

    url, token, log = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    shown = {}
    try:
        page.goto(f"{url}lab/tree/notebooks?token={token}")
        for name in NOTEBOOKS:
            panel = _run_all_cells(page, name)
            assert panel.locator(".jp-InputPrompt", has_text="[*]").count() == 0
            # errors and warnings alike render as stderr output
            stderr = panel.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            )
            assert stderr.count() == 0, stderr.all_inner_texts()
            images = panel.locator(".jp-OutputArea-output[data-mime-type='image/png'] img")
            expect(images).to_have_count(_charts(name))
            for image in images.all():
                assert image.evaluate(
                    "img => img.complete && img.naturalWidth > 100 "
                    "&& img.src.startsWith('data:image/png')"
                )
            shown[name] = "\n".join(panel.locator(".jp-OutputArea").all_inner_texts())
    except Exception:
        page.screenshot(path=str(tmp_path / "jupyterlab.png"))
        print(f"screenshot: {tmp_path / 'jupyterlab.png'}\nJupyterLab's log:\n{log.read_text()}")
        raise
    finally:
        page.close()

    run = project / "reports" / "sample"
    assert (run / "index.html").is_file()
    assert sorted(p.name for p in project.iterdir()) == [
        "notebooks",
        "personas",
        "pyproject.toml",
        "reports",
    ]
    assert sorted(p.name for p in (project / "personas").iterdir()) == ["notebooks"]
    names = [p["name"] for p in json.loads((run / "personas.json").read_text())]
    assert len(names) >= 2
    for name in names:
        assert name in shown["02_personas"] and name in shown["03_report"], name
    assert "reports/sample/index.html" in shown["03_report"]
    assert re.search(r"load: [\d,]+ rows read \(\d+\.\d s\)", shown["01_features"])
    assert "load: 1,500 users summed" in shown["01_features"]
    assert "personas: 1,500 users assigned" in shown["02_personas"]
