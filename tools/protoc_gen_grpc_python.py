"""protoc plugin that runs grpcio-tools' gRPC Python generator for `buf generate`.

grpcio-tools ships its gRPC generator only inside its bundled protoc, not as a
`protoc-gen-*` program, and buf only runs protoc for protoc's own languages. This
bridge hands the plugin request's files to that protoc as a descriptor set and
returns what it writes, so generation stays offline and pinned.
"""

import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def generate(request: plugin_pb2.CodeGeneratorRequest) -> plugin_pb2.CodeGeneratorResponse:
    """Runs grpcio-tools' protoc with --grpc_python_out on the request's files."""
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory() as work_dir:
        descriptor_set = Path(work_dir, "request.binpb")
        descriptor_set.write_bytes(
            descriptor_pb2.FileDescriptorSet(file=request.proto_file).SerializeToString()
        )
        out_dir = Path(work_dir, "out")
        out_dir.mkdir()
        exit_code = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={descriptor_set}",
                f"--grpc_python_out={out_dir}",
                *request.file_to_generate,
            ]
        )
        if exit_code != 0:
            response.error = f"grpc_tools.protoc exited with {exit_code}"
            return response
        for generated in sorted(out_dir.rglob("*.py")):
            response.file.add(
                name=generated.relative_to(out_dir).as_posix(), content=generated.read_text()
            )
    return response


def main() -> None:
    """Reads a CodeGeneratorRequest on stdin and writes the response on stdout."""
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    sys.stdout.buffer.write(generate(request).SerializeToString())


if __name__ == "__main__":
    main()
