"""Device buffers through cuda-python, for TensorRT without torch.

NVIDIA's current TensorRT samples use cuda-python (`cuda.bindings.runtime`), not pycuda;
we follow them. Every call returns (error, value...); errors raise with the CUDA name.
"""

from __future__ import annotations

import numpy as np

from jsnet_edge.devices import cudart


def check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        rt = cudart()
        raise RuntimeError(f"CUDA error {rt.cudaGetErrorName(err)[1]}")
    return rest[0] if len(rest) == 1 else rest


class CudaStream:
    def __init__(self) -> None:
        self.rt = cudart()
        self.handle = check(self.rt.cudaStreamCreate())

    def synchronize(self) -> None:
        check(self.rt.cudaStreamSynchronize(self.handle))

    def close(self) -> None:
        self.rt.cudaStreamDestroy(self.handle)


class DeviceArray:
    """A device allocation sized for one array, with host copies on a stream."""

    def __init__(self, nbytes: int) -> None:
        self.rt = cudart()
        self.nbytes = nbytes
        self.ptr = check(self.rt.cudaMalloc(nbytes))

    def upload(self, host: np.ndarray, stream: CudaStream) -> None:
        host = np.ascontiguousarray(host)
        check(
            self.rt.cudaMemcpyAsync(
                self.ptr,
                host.ctypes.data,
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                stream.handle,
            )
        )

    def download(self, host: np.ndarray, stream: CudaStream) -> None:
        check(
            self.rt.cudaMemcpyAsync(
                host.ctypes.data,
                self.ptr,
                host.nbytes,
                self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                stream.handle,
            )
        )

    def free(self) -> None:
        if self.ptr is not None:
            self.rt.cudaFree(self.ptr)
            self.ptr = None
