"""Training, evaluation, calibration, MLflow tracking and the model registry.

`training` (the `train` stage), `data` (split), `model` (estimators), `tuning`, `evaluation`,
`report`, `run_log` (the MLflow run), `tracking` (MLflow wiring), `registry` (gate, promotion,
champion) and `lineage` (the gold each model was trained on). Import the module you need: this
package imports none of them, so that the registry does not pull in the training stack.
"""
