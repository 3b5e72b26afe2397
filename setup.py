"""Build the FFTW kernel.

FFTW is found, in order, from FFTW_INCLUDE_DIR / FFTW_LIBRARY_DIR, from
FFTW_DIR (a prefix with include/ and lib/), from pkg-config, and from the
compiler's default paths.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

INSTALL_HINT = (
    "audiosync needs FFTW 3 to build: fftw3.h was not found.\n"
    "  Debian/Ubuntu: sudo apt-get install libfftw3-dev pkg-config\n"
    "  Fedora:        sudo dnf install fftw-devel\n"
    "  macOS:         brew install fftw\n"
    "or point FFTW_DIR at a prefix holding include/fftw3.h and lib/libfftw3.*\n"
    "(FFTW_INCLUDE_DIR and FFTW_LIBRARY_DIR set the two separately)."
)


def _pkg_config(*args):
    exe = shutil.which("pkg-config")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, *args, "fftw3"], capture_output=True, text=True, check=True)
    except (subprocess.CalledProcessError, OSError):
        return []
    return out.stdout.split()


def fftw_paths():
    include_dirs, library_dirs = [], []
    prefix = os.environ.get("FFTW_DIR")
    if prefix:
        include_dirs.append(os.path.join(prefix, "include"))
        library_dirs.append(os.path.join(prefix, "lib"))
    if os.environ.get("FFTW_INCLUDE_DIR"):
        include_dirs.insert(0, os.environ["FFTW_INCLUDE_DIR"])
    if os.environ.get("FFTW_LIBRARY_DIR"):
        library_dirs.insert(0, os.environ["FFTW_LIBRARY_DIR"])
    include_dirs += [f[2:] for f in _pkg_config("--cflags-only-I") if f.startswith("-I")]
    library_dirs += [f[2:] for f in _pkg_config("--libs-only-L") if f.startswith("-L")]
    return include_dirs, library_dirs


def check_header(include_dirs):
    candidates = [*include_dirs, "/usr/include", "/usr/local/include", "/opt/homebrew/include"]
    candidates += [d for d in (sysconfig.get_config_var("INCLUDEDIR"),) if d]
    if not any(Path(d, "fftw3.h").is_file() for d in candidates):
        sys.exit(INSTALL_HINT)


include_dirs, library_dirs = fftw_paths()
if not any(a in sys.argv for a in ("egg_info", "sdist", "--name", "--version")):
    check_header(include_dirs)

# The planner and the kernel are two modules: the kernel cimports the
# planner's plans_for() and Plans.
extensions = [
    Extension(
        f"audiosync.{name}",
        [f"audiosync/{name}.pyx"],
        include_dirs=[*include_dirs, numpy.get_include()],
        library_dirs=library_dirs,
        libraries=["fftw3f", "fftw3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O3"] if sys.platform != "win32" else [],
    )
    for name in ("_planner", "_xcorr")
]

setup(ext_modules=cythonize(extensions, language_level=3))
