"""Machine learning for market making: microstructure features (batch and incremental), short-term predictors
trained with scikit-learn and run through ONNX, and the reinforcement-learning market maker.

docs/ML.md describes them.
"""
