"""The call chain: a method's handler wrapped once, its links' contexts nested in order."""

from types import SimpleNamespace, TracebackType
from typing import Any

import grpc
import pytest

from farm_core.call_chain import CallChain, CallContext, CallInterceptor, ServerCall, wrap_handler

METHOD = "/farm.tasks.v1.TaskService/GetTask"


class Recorded(CallContext):
    """Notes its entry and exit in `log`; swallows or replaces an error if told."""

    def __init__(self, name: str, log: list[str], replace: bool = False, swallow: bool = False):
        self.name, self.log, self.replace, self.swallow = name, log, replace, swallow

    async def __aenter__(self) -> None:
        self.log.append(f"enter {self.name}")

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        self.log.append(f"exit {self.name} {type(error).__name__ if error else None}")
        if error is not None and self.replace:
            raise KeyError(self.name)
        return self.swallow


class Link(CallInterceptor):
    def __init__(self, name: str, log: list[str], **how: bool) -> None:
        self.name, self.log, self.how, self.arounds = name, log, how, 0

    def around(self, method: str) -> Any:
        self.arounds += 1
        return lambda call: Recorded(self.name, self.log, **self.how)


async def handler_of(chain: CallChain, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def found(details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        return handler

    details = SimpleNamespace(method=METHOD, invocation_metadata=())
    return await chain.intercept_service(found, details)


async def test_a_methods_handler_is_wrapped_once_for_all_its_calls() -> None:
    log: list[str] = []
    link = Link("a", log)
    chain = CallChain(link, Link("b", log))

    async def answer(request: Any, context: Any) -> str:
        return "answer"

    handler = grpc.unary_unary_rpc_method_handler(answer)
    first = await handler_of(chain, handler)
    assert await handler_of(chain, handler) is first
    assert link.arounds == 1
    assert first is not handler


async def test_links_leave_in_reverse_and_see_the_error_an_inner_one_raised() -> None:
    log: list[str] = []
    chain = CallChain(Link("outer", log), Link("middle", log, replace=True), Link("inner", log))
    around = chain.around(METHOD)
    assert around is not None
    with pytest.raises(KeyError):
        async with around(ServerCall(context=None)):
            raise ValueError("in the handler")
    assert log == [
        "enter outer",
        "enter middle",
        "enter inner",
        "exit inner ValueError",
        "exit middle ValueError",
        "exit outer KeyError",
    ]


async def test_a_link_that_swallows_the_error_ends_it_for_those_outside() -> None:
    log: list[str] = []
    chain = CallChain(Link("outer", log), Link("inner", log, swallow=True))
    around = chain.around(METHOD)
    assert around is not None
    async with around(ServerCall(context=None)):
        raise ValueError("in the handler")
    assert log[-2:] == ["exit inner ValueError", "exit outer None"]


async def test_a_refused_request_stream_is_read_to_its_end_before_the_status_goes_out() -> None:
    # A client still writing into a call the server has ended gets grpc's INTERNAL
    # instead of the refusal, so the refusal waits until the client has sent it all.
    sent: list[int] = []

    async def requests() -> Any:
        for number in range(5):
            sent.append(number)
            yield number

    async def refuse(requests: Any, context: Any) -> str:
        await anext(requests)
        raise grpc.aio.AbortError()

    log: list[str] = []
    handler = wrap_handler(
        grpc.stream_unary_rpc_method_handler(refuse),
        lambda call: Recorded("link", log),
    )
    context = SimpleNamespace(invocation_metadata=lambda: ())
    with pytest.raises(grpc.aio.AbortError):
        await handler.stream_unary(requests(), context)
    assert sent == [0, 1, 2, 3, 4]
    assert log == ["enter link", "exit link AbortError"]
