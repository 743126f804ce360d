"""Running a network: the `Backend` protocol, one file per runtime (torch, onnxruntime,
OpenVINO, TensorRT), the capability table and the factory that opens the right one.

Runtime code reads what `jsnet_edge.export` writes and never writes models itself.
Optional runtimes (onnxruntime, openvino, tensorrt, cuda-python) are imported only when
a backend of theirs is opened.
"""
