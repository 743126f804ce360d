"""From a JSNet to the files runtimes consume: ONNX (fp32, fp16; int8 comes from
`jsnet_edge.calibration`), TensorRT engines with their sidecar, torch-tensorrt programs,
and the checks of an export against the torch reference."""
