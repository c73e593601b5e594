"""OTLP/HTTP bodies in and out (pure): bounded gzip decoding, export responses and error statuses
in the request's encoding, as the OTLP specification's HTTP transport says."""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from starlette.responses import JSONResponse, Response

PROTOBUF = "application/x-protobuf"

# The gRPC code a google.rpc.Status body carries for each HTTP status we answer with.
GRPC_CODES = {
    400: code_pb2.INVALID_ARGUMENT,
    413: code_pb2.RESOURCE_EXHAUSTED,
    415: code_pb2.INVALID_ARGUMENT,
    503: code_pb2.UNAVAILABLE,
}


class TooLarge(ValueError):
    """The body, or what it decompresses to, is over the limit."""


class BadEncoding(ValueError):
    """A Content-Encoding the collector does not read (415)."""


class CorruptBody(ValueError):
    """A body that is not valid in its Content-Encoding (400)."""


def decode(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """The body after its ``Content-Encoding`` (``gzip`` or none), never more than ``max_bytes``
    decompressed: a gzip bomb stops at the limit instead of filling memory."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise BadEncoding(f"unsupported content encoding {encoding!r} (gzip or none)")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip header and trailer
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise CorruptBody(f"body is not valid gzip: {exc}") from exc
    if len(out) > max_bytes:
        raise TooLarge(f"body decompresses to over {max_bytes} bytes")
    if not inflater.eof:
        raise CorruptBody("body is truncated gzip")
    return out


def status(code: int, message: str, as_proto: bool, headers: Mapping[str, str] | None = None) -> Response:
    """An error answer: HTTP ``code`` with a google.rpc.Status body (protobuf for protobuf
    requests, else its JSON form ``{"code": <grpc code>, "message": ...}``)."""
    st = status_pb2.Status(code=GRPC_CODES.get(code, code_pb2.UNKNOWN), message=message)
    if as_proto:
        return Response(st.SerializeToString(), status_code=code, media_type=PROTOBUF, headers=headers)
    return JSONResponse({"code": st.code, "message": message}, status_code=code, headers=headers)


def export_response(response: Message, as_proto: bool) -> Response:
    """200 with the Export*ServiceResponse (empty, or partial success) in the request's encoding."""
    if as_proto:
        return Response(response.SerializeToString(), media_type=PROTOBUF)
    return JSONResponse(MessageToDict(response))
