"""Pick a headless OpenGL backend for MuJoCo (EGL, else OSMesa) before `mujoco` is imported.

MuJoCo reads `MUJOCO_GL` once, when it is imported, so the choice cannot be undone later in
the process. We therefore probe EGL here with plain ctypes (no PyOpenGL, no subprocess: it costs
about a millisecond) and fall back to OSMesa when no EGL display can be initialised. A value the
user set in `MUJOCO_GL` is respected when MuJoCo knows it; an unknown value, or a backend that
cannot make a context here, is one clear `UserError` naming the variable and the packages to install.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from mirrorlab.errors import UserError

SYSTEM_PACKAGES = "libegl1 libgl1 libgl1-mesa-dri libosmesa6"
# The values mujoco 3.x accepts for MUJOCO_GL (anything else fails inside `import mujoco`).
KNOWN_BACKENDS = ("egl", "osmesa", "glfw", "glx", "cgl", "wgl", "disable", "disabled", "off", "false", "0")
INSTALL_HINT = (
    f"install the system packages: sudo apt-get install {SYSTEM_PACKAGES} "
    "(scripts/setup.sh does this), or set MUJOCO_GL to a backend that works here"
)

_EGL_PLATFORM_DEVICE_EXT = 0x313F


def egl_works() -> bool:
    """True when libEGL loads and some EGL device (or the default display) initialises."""
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return False
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglInitialize.restype = ctypes.c_uint
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    displays: list[int] = []
    query_ptr = egl.eglGetProcAddress(b"eglQueryDevicesEXT")
    platform_ptr = egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if query_ptr and platform_ptr:
        # MuJoCo's EGL backend opens a display on a device, so probe exactly that path.
        query = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_int, ctypes.c_void_p,
                                 ctypes.POINTER(ctypes.c_int))(query_ptr)
        get_display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p,
                                       ctypes.c_void_p)(platform_ptr)
        devices = (ctypes.c_void_p * 8)()
        count = ctypes.c_int(0)
        if query(8, devices, ctypes.byref(count)):
            for i in range(count.value):
                display = get_display(_EGL_PLATFORM_DEVICE_EXT, devices[i], None)
                if display:
                    displays.append(display)
    for display in displays:
        if egl.eglInitialize(display, None, None):
            egl.eglTerminate(display)
            return True
    return False


def osmesa_available() -> bool:
    return ctypes.util.find_library("OSMesa") is not None


def select_backend() -> str:
    """Set `MUJOCO_GL` (and PyOpenGL's platform to match) unless the user chose one; return it.

    Called by the env modules just before they import mujoco, never at package import."""
    if "MUJOCO_GL" not in os.environ:
        # mujoco imported already: its backend is fixed, nothing to choose.
        if "mujoco" not in sys.modules:
            os.environ["MUJOCO_GL"] = "egl" if egl_works() else "osmesa"
    backend = os.environ.get("MUJOCO_GL", "")
    if backend.lower() not in KNOWN_BACKENDS and "mujoco" not in sys.modules:
        raise UserError(f"MUJOCO_GL={backend!r} is not a backend MuJoCo knows; use egl or osmesa (headless), "
                        "or unset it to let mirrorlab choose")
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    # Mesa's software rasteriser spreads each draw over all cores; for 64x64 frames the threads
    # cost more than they save and they fight vector-env workers for the CPUs.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    return backend


def renderer_error(err: BaseException) -> UserError:
    """The one clear error raised when no headless GL context can be created."""
    backend = os.environ.get("MUJOCO_GL", "<unset>")
    return UserError(
        f"MuJoCo could not create a headless OpenGL context (MUJOCO_GL={backend}: "
        f"{type(err).__name__}: {err}). EGL works: {egl_works()}; OSMesa found: "
        f"{osmesa_available()}. To fix it, {INSTALL_HINT}."
    )


def import_mujoco():
    """The `mujoco` module, imported only after the backend is chosen: every env module gets it here."""
    select_backend()
    import mujoco

    return mujoco
