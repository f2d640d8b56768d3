"""The ``with Scene(...)`` block: sources created inside it register with the scene (as in PyMC).

The stack lives in a ContextVar, so it is per thread/task and empty outside ``with`` blocks.
"""

from __future__ import annotations

import contextvars

_stack: contextvars.ContextVar[tuple] = contextvars.ContextVar("scarlet2_scene_stack", default=())


def active_scene():
    s = _stack.get()
    return s[-1] if s else None


def push(scene):
    _stack.set(_stack.get() + (scene,))


def pop():
    _stack.set(_stack.get()[:-1])


def register(source):
    scene = active_scene()
    if scene is not None:
        # A Scene is immutable to JAX; only its `with` block appends, before any tracing sees it.
        object.__setattr__(scene, "sources", scene.sources + (source,))
