"""Engines beyond one machine: the Parquet export of the store (parquet.py), submit-time
features on Dask (dask_features.py) and training / batch scoring on a Dask cluster
(dask_engine.py), with failure / memory training fed from the export on the workers
(dask_parquet.py features, dask_train.py split and fit). Sits beside models: imports core, knowledge and models only. Dask and
pyarrow are the optional `dask` extra; nothing here is imported by the single-machine path."""
