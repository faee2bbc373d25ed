"""One Jupyter kernel for all the notebooks of a run: :class:`SharedKernel`.

``personas run`` executes its three notebooks with papermill. A fresh kernel per notebook would
pay its start-up and the imports (pandas, DuckDB, scikit-learn, umap-learn with numba) three
times; sharing one pays them once, and each notebook still starts from an empty namespace.
"""

from __future__ import annotations

from pathlib import Path

# The kernel's own log (a TCP notice, and an "ERROR" line when it is shut down after a
# successful run) reads like a failure; errors in cells still reach us through papermill.
KERNEL_QUIET = ["--IPKernelApp.log_level=CRITICAL"]
# nbclient adds the in-memory history when it starts a kernel itself; we start ours.
KERNEL_ARGS = [*KERNEL_QUIET, "--HistoryManager.hist_file=:memory:"]
KERNEL_START_TIMEOUT = 60  # seconds, papermill's default start_timeout
PRELOAD_TIMEOUT = 600  # seconds the preload imports may take (a cold numba cache)


class SharedKernel:
    """One IPython kernel that executes the notebooks of a run one after another.

    A kernel costs seconds to start plus the imports (pandas, duckdb, sklearn, umap with numba);
    sharing one pays that once. papermill hands extra keyword arguments through its nbclient
    engine to ``nbclient.NotebookClient``; given ``km``, the client starts no kernel of its own
    (ours is running) and does not shut ours down (it does not own the manager). Before every
    notebook after the first, the kernel's namespace is reset (``reset(new_session=True)``: no
    variable of the previous notebook survives, execution counts start again at 1) and its
    working folder restored; imported modules stay in ``sys.modules``. Leaving the ``with`` block
    always shuts the kernel down (after a run, a failed cell, Ctrl-C), as nbclient would.

    ``preload`` names modules the kernel imports as soon as it is up, without waiting for it:
    they load while this process goes on (importing papermill, say), and the first notebook's
    imports find them loaded. ``background`` names modules that only later notebooks need (the
    model's umap and hdbscan, about 2 s with numba's cache): the kernel imports them in a thread
    of its own after the preload, while the first notebook runs (its DuckDB queries release the
    interpreter lock). Nothing is bound in the notebook's namespace.
    """

    def __init__(self, cwd: str, preload: tuple[str, ...] = (), background: tuple[str, ...] = ()):
        self.cwd = cwd
        self.preload = preload
        self.background = background
        self.km = None
        self._control = None  # our own client: the preload and the resets (see _start)
        self._preload_id = None  # the preload's request, until its reply is read
        self.notebooks = 0

    def __enter__(self) -> SharedKernel:
        from jupyter_core.utils import run_sync

        self.km = _kernel_manager(kernel_name="python3")
        try:
            run_sync(self._start)()
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._shutdown(idle=exc_type is None)
        except Exception:
            if exc_type is None:  # else the error that got us here is the one to report
                raise

    async def _start(self) -> None:
        await self.km.start_kernel(extra_arguments=KERNEL_ARGS, cwd=self.cwd)
        # sent, not awaited here: the first execute() waits for its reply. A blocking client
        # (threads, no event loop of ours), open for the whole run: it also sends the resets
        # between notebooks. Only their replies are read, on the shell channel: a client just
        # connected misses the kernel's first IOPub messages, and waiting for its IOPub to be
        # ready (jupyter_client's wait_for_ready) cost 0.2 s a reset.
        from jupyter_client import BlockingKernelClient

        code = (
            f"__import__({__name__!r}, fromlist=['_']).prepare("
            f"{list(self.preload)!r}, {list(self.background)!r})"
        )
        self._control = BlockingKernelClient()
        self._control.load_connection_info(self.km.get_connection_info())
        self._control.start_channels()
        self._preload_id = self._control.execute(
            code, silent=True, store_history=False, allow_stdin=False
        )

    def execute(
        self, path: Path, output: Path, parameters: dict, progress_bar: bool, stdout_file=None
    ):
        """``papermill.execute_notebook`` in this kernel; returns the executed notebook.

        ``stdout_file``, when given, receives what the cells print, as they print it (the
        ``write`` and ``flush`` of a file)."""
        import papermill as pm

        try:
            if self._preload_id is not None:
                # wait here, not in nbclient: its 60 s start timeout would count the imports
                self._reply(self._preload_id, PRELOAD_TIMEOUT)
                self._preload_id = None
            if self.notebooks:
                self._reset()
            self.notebooks += 1
            return pm.execute_notebook(
                str(path),
                str(output),
                parameters=parameters,
                progress_bar=progress_bar,
                log_output=False,
                stdout_file=stdout_file,
                kernel_name="python3",
                cwd=self.cwd,
                start_timeout=KERNEL_START_TIMEOUT,
                km=self.km,
            )
        finally:
            self._close_clients()  # nbclient leaves its client open when it does not own km

    def _reset(self) -> None:
        code = f"__import__('os').chdir({self.cwd!r})\nget_ipython().reset(new_session=True)"
        sent = self._control.execute(code, silent=True, store_history=False, allow_stdin=False)
        content = self._reply(sent, KERNEL_START_TIMEOUT)["content"]
        if content["status"] != "ok":
            raise RuntimeError(
                f"resetting the notebook kernel failed: {content.get('ename')}: "
                f"{content.get('evalue')}"
            )

    def _reply(self, msg_id: str, timeout: float) -> dict:
        """The kernel's reply to our client's request ``msg_id``."""
        while True:
            reply = self._control.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply

    def _stop_control(self) -> None:
        if self._control is not None:
            self._control.stop_channels()
            self._control = None

    def _close_clients(self) -> None:
        if self.km is not None:
            _close_clients(self.km)

    def _shutdown(self, idle: bool = False) -> None:
        from jupyter_core.utils import run_sync

        self._stop_control()
        km, self.km = self.km, None
        if km is not None:
            try:
                run_sync(_stop_kernel)(km, idle)
            finally:
                _close_clients(km)  # after: an interrupted cell's task still reads from them


def prepare(preload: list[str], background: list[str]) -> None:
    """Kernel side, its first code: import ``preload`` now and ``background`` in a thread.

    The imported modules' objects live as long as the kernel, yet every full collection of
    the garbage collector walks them again: IPython's reset between notebooks collects
    everything, and so does the interpreter when the kernel exits (pandas, scikit-learn, umap
    and numba loaded: ~0.9 s of every run here). ``gc.freeze()`` after the imports, and again
    on exit, exempts them (the kernel then exits in ~0.15 s).
    """
    import atexit
    import gc
    import importlib

    atexit.register(_exit_quietly)
    for name in preload:
        importlib.import_module(name)
    gc.freeze()
    if background:
        import_in_background(background)


def _exit_quietly() -> None:
    """Kernel side, on exit: freeze what is left (see :func:`prepare`), and let the teardown
    print nothing: DuckDB's bindings report objects still alive then as leaks, which frozen
    objects are, and nobody reads the kernel's stderr any more."""
    import gc
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    gc.freeze()


def import_in_background(names: list[str]) -> None:
    """Kernel side: import ``names`` in a daemon thread. A module that fails to import is left
    alone here: the notebook that imports it reports the error where the user sees it."""
    import gc
    import importlib
    import threading

    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - reported by the notebook's own import
                pass
        gc.freeze()  # see prepare()

    threading.Thread(target=load, name="personas-imports", daemon=True).start()


def _close_clients(km) -> None:
    while km.clients:
        km.clients.pop().stop_channels()


async def _stop_kernel(km, idle: bool = False) -> None:
    """What nbclient does with a kernel it owns (``NotebookClient._async_cleanup_kernel``, with its
    default graceful shutdown: interrupt, ask, then terminate).

    ``idle``: the kernel ran everything it was given, so it is only asked to stop (terminated
    if it does not): the interrupt before that would stop no cell, and the kernel took about
    0.5 s longer to go with it here.
    """
    import asyncio

    # Ctrl-C in a cell leaves nbclient's tasks for that cell on this loop; left running, they
    # would see the kernel go and print a "Task exception was never retrieved ... Kernel died".
    leftovers = [
        t
        for t in asyncio.all_tasks()
        if "NotebookClient." in getattr(t.get_coro(), "__qualname__", "")
    ]
    for task in leftovers:
        task.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)
    try:
        if idle and await km.is_alive():
            await km.request_shutdown()
            await km.finish_shutdown(pollinterval=0.02)
        elif await km.is_alive():
            await km.shutdown_kernel(now=False)
    except RuntimeError as exc:
        if "No kernel is running!" not in str(exc):
            raise
    finally:
        await km.cleanup_resources()


def _kernel_manager(**kwargs):
    """jupyter_client's ``AsyncKernelManager`` (the class nbclient itself would use), keeping the
    clients it makes so that the ones nbclient leaves open can be closed."""
    from jupyter_client.manager import AsyncKernelManager

    class Manager(AsyncKernelManager):
        def client(self, **kw):
            kc = super().client(**kw)
            self.clients.append(kc)
            return kc

    km = Manager(**kwargs)
    km.clients = []
    return km
