# Runs before a code_interpreter cell inside the sandbox. It seeds random (and numpy, once
# imported), makes matplotlib's show() save each open figure as a PNG in the working directory
# (announced on stdout), and runs the cell so that tracebacks show only the cell's own lines.
# The host replaces @@WORK_DIR@@, @@PLOT_PREFIX@@ and @@CODE@@ with JSON string literals.


def _llama_stack_run_cell():
    import importlib.abc
    import importlib.util
    import os
    import random
    import sys
    import traceback

    os.umask(0o002)
    random.seed(0)

    class SeedNumpy(importlib.abc.MetaPathFinder):
        # numpy is seeded when the cell first imports it, so cells without it start faster.
        def find_spec(self, name, path=None, target=None):
            if name != "numpy":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            run = spec.loader.exec_module

            def run_and_seed(module):
                run(module)
                module.random.seed(0)

            spec.loader.exec_module = run_and_seed
            return spec

    sys.meta_path.insert(0, SeedNumpy())

    work_dir = @@WORK_DIR@@
    plot_prefix = @@PLOT_PREFIX@@
    os.chdir(work_dir)
    backend_source = """
import json as _json
import os as _os

from matplotlib import _pylab_helpers
from matplotlib.backend_bases import FigureManagerBase as FigureManager
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas

_saved = [0]


def show(*args, **kwargs):
    for manager in _pylab_helpers.Gcf.get_all_fig_managers():
        path = _os.path.join(WORK_DIR, "%s_%d.png" % (PLOT_PREFIX, _saved[0]))
        _saved[0] += 1
        manager.canvas.figure.savefig(path, format="png")
        print("__tools_attachment__=" + _json.dumps({"filepath": path, "mimetype": "image/png"}), flush=True)
    _pylab_helpers.Gcf.destroy_all()
"""

    class PlotBackend(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path=None, target=None):
            if name == "llama_stack_plots":
                return importlib.util.spec_from_loader(name, self)
            return None

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.WORK_DIR = work_dir
            module.PLOT_PREFIX = plot_prefix
            exec(compile(backend_source, "<plots>", "exec"), module.__dict__)

    sys.meta_path.append(PlotBackend())
    os.environ["MPLBACKEND"] = "module://llama_stack_plots"
    os.environ.setdefault("MPLCONFIGDIR", "/tmp")

    cell = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(@@CODE@@, "<cell>", "exec"), cell)
    except SystemExit:
        raise
    except BaseException as e:
        # Drop this frame: the trace starts at the cell.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        sys.stdout.flush()
        sys.exit(1)
    finally:
        sys.stdout.flush()


_llama_stack_run_cell()
