"""The machinery every library's instrumentor shares: settings, the telemetry
core, and applying or undoing an adapter's list of patches with ``wrapt``."""

from __future__ import annotations

import contextlib
import importlib
import sys
from typing import Any, ClassVar, Collection, NamedTuple, Sequence, Union

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.utils import unwrap
from wrapt import register_post_import_hook, wrap_function_wrapper

from opentelemetry.instrumentation.email._attempt import Observer, Operation, Stash
from opentelemetry.instrumentation.email._config import Settings
from opentelemetry.instrumentation.email._telemetry import EmailTelemetry


class Patch(NamedTuple):
    """One callable to wrap: ``module`` and the dotted ``name`` in it, and
    what it is to the adapter: an :class:`Operation` (traced), an
    :class:`Observer` (reports to the operation around it) or a
    :class:`Stash` (keeps data for a later call). ``is_async``: a coroutine
    function. ``optional``: skipped when the module is not installed (an
    optional companion library, such as aiobotocore next to botocore).
    ``subclasses``: ``name`` is ``Class.method`` and every subclass that
    defines its own ``method`` is wrapped too, those defined later included
    (Django's email backends: the framework imports the configured one when
    it first sends). ``deferred``: the instrumentor never imports ``module``
    itself; the wrap is applied when the application imports it (Flask-Mail
    changes the ``email`` package's UTF-8 charset when imported: importing it
    for an application that does not use it would change that
    application's mail)."""

    module: str
    name: str
    operation: Union[Operation, Observer, Stash]
    is_async: bool = False
    optional: bool = False
    subclasses: bool = False
    deferred: bool = False


# The keyword EmailInstrumentor passes its one telemetry core under, so every
# library it instruments shares one set of validated settings and instruments.
SHARED_TELEMETRY = "_email_telemetry"


def telemetry_from_kwargs(kwargs: dict[str, Any]) -> EmailTelemetry:
    shared = kwargs.get(SHARED_TELEMETRY)
    if isinstance(shared, EmailTelemetry):
        return shared
    return EmailTelemetry(
        Settings.from_environment(kwargs),
        tracer_provider=kwargs.get("tracer_provider"),
        meter_provider=kwargs.get("meter_provider"),
        logger_provider=kwargs.get("logger_provider"),
        request_hook=kwargs.get("request_hook"),
        response_hook=kwargs.get("response_hook"),
    )


class LibraryInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments one library from its adapter's patch list.

    Subclasses set ``patches`` (and ``dependencies`` for the dependency
    check); the adapter module imports its library at the top, so a missing
    library makes the entry point's import fail and
    ``opentelemetry-instrument`` skips it quietly.
    """

    patches: ClassVar[Sequence[Patch]] = ()
    dependencies: ClassVar[Collection[str]] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.dependencies

    def _instrument(self, **kwargs: Any) -> None:
        telemetry = telemetry_from_kwargs(kwargs)
        for patch in self.patches:
            if patch.optional and not _importable(patch.module):
                continue
            operation = patch.operation
            if isinstance(operation, Observer):
                wrapper = telemetry.observer_wrapper(operation)
            elif isinstance(operation, Stash):
                wrapper = (
                    telemetry.async_stash_wrapper(operation)
                    if patch.is_async
                    else telemetry.stash_wrapper(operation)
                )
            elif patch.is_async:
                wrapper = telemetry.async_wrapper(operation)
            else:
                wrapper = telemetry.sync_wrapper(operation)
            if patch.deferred and patch.module not in sys.modules:
                self._defer(patch, wrapper)
            else:
                _apply(patch, wrapper)

    def _defer(self, patch: Patch, wrapper: Any) -> None:
        """Wrap when ``patch.module`` is imported, unless uninstrumented by then."""
        pending: dict[Patch, Any] = self.__dict__.setdefault("_pending", {})
        pending[patch] = wrapper

        def on_import(module: Any) -> None:
            waiting = pending.pop(patch, None)
            if waiting is not None:
                _apply(patch, waiting)

        register_post_import_hook(on_import, patch.module)

    def _uninstrument(self, **kwargs: Any) -> None:
        pending: dict[Patch, Any] = self.__dict__.get("_pending", {})
        for patch in reversed(self.patches):
            if pending.pop(patch, None) is not None:
                continue  # deferred, and the module was never imported
            if patch.optional and not _importable(patch.module):
                continue
            if patch.subclasses:
                _unwrap_family(patch)
                continue
            owner: Any = importlib.import_module(patch.module)
            path = patch.name.split(".")
            for part in path[:-1]:
                owner = getattr(owner, part)
            name = path[-1]
            # Read the class's own slot: getattr() on a wrapped classmethod
            # binds it, and unwrap() would then store a bound method.
            current = vars(owner).get(name) if isinstance(owner, type) else None
            if current is not None and hasattr(current, "__wrapped__"):
                setattr(owner, name, current.__wrapped__)
            else:
                unwrap(owner, name)


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


# -- a method and its overrides in every subclass ------------------------------------------

_HOOK = "__init_subclass__"
_MARK = "__email_family_wrapper__"


def _apply(patch: Patch, wrapper: Any) -> None:
    if patch.subclasses:
        _wrap_family(patch, wrapper)
    else:
        wrap_function_wrapper(patch.module, patch.name, wrapper)


def _root(patch: Patch) -> tuple[type, str]:
    class_name, _, method = patch.name.rpartition(".")
    owner: Any = importlib.import_module(patch.module)
    for part in class_name.split("."):
        owner = getattr(owner, part)
    return owner, method


def _family(root: type) -> list[type]:
    seen: list[type] = []
    pending = [root]
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.append(cls)
            pending.extend(cls.__subclasses__())
    return seen


def _ours(value: Any) -> bool:
    """True for a method this package wrapped (not any ``__wrapped__``: a
    decorator the application put there stays)."""
    return getattr(getattr(value, "_self_wrapper", None), _MARK, False) is True


def _wrap_own(cls: type, method: str, wrapper: Any) -> None:
    """Wrap ``cls``'s own ``method``, when it defines one not yet wrapped."""
    own = vars(cls).get(method)
    if own is not None and callable(own) and not _ours(own):
        wrap_function_wrapper(cls, method, wrapper)


def _wrap_family(patch: Patch, wrapper: Any) -> None:
    root, method = _root(patch)
    setattr(wrapper, _MARK, True)
    for cls in _family(root):
        _wrap_own(cls, method, wrapper)
    # Classes defined from now on: wrapped as they are created. The hook
    # calls whatever __init_subclass__ the root had (its own or inherited).
    original = vars(root).get(_HOOK)

    def __init_subclass__(cls: Any, /, **kwargs: Any) -> None:
        if original is not None:
            original.__get__(None, cls)(**kwargs)
        else:
            super(root, cls).__init_subclass__(**kwargs)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):  # never break the application's class
            _wrap_own(cls, method, wrapper)

    __init_subclass__.__email_original__ = original  # type: ignore[attr-defined]
    setattr(root, _HOOK, classmethod(__init_subclass__))


def _unwrap_family(patch: Patch) -> None:
    root, method = _root(patch)
    hook = vars(root).get(_HOOK)
    function = getattr(hook, "__func__", None)
    if function is not None and hasattr(function, "__email_original__"):
        original = function.__email_original__
        if original is None:
            delattr(root, _HOOK)
        else:
            setattr(root, _HOOK, original)
    for cls in _family(root):
        own: Any = vars(cls).get(method)
        if _ours(own):
            setattr(cls, method, own.__wrapped__)
