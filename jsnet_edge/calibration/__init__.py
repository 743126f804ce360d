"""INT8 calibration: Q/DQ ONNX files that the CPU runtimes run and TensorRT compiles."""
