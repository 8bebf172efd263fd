"""feature_store: Databricks-style feature tables on the lakehouse, with point-in-time training sets.

>>> from feature_store import FeatureStoreClient, FeatureLookup
>>> fs = FeatureStoreClient(root="/tmp/lake")
>>> fs.create_table(name="customer_features", primary_keys=["customer_id"], timestamp_keys=["ts"], df=df)
>>> ts = fs.create_training_set(df=labels, label="churn", feature_lookups=[
...     FeatureLookup(table_name="customer_features", lookup_key="customer_id", timestamp_lookup_key="label_ts")])
>>> ts.load_df()
"""

from lakehouse import __version__ as __version__  # one version for the distribution's four packages

from . import errors
from ._client import FeatureStoreClient
from ._consistency import ConsistencyReport, Mismatch, TableCheck
from ._engineering import FeatureEngineeringClient
from ._entities import FeatureTable, LookupAudit, ModelVersionUse, RunUse, TrainingSetAudit, TrainingSetUse
from ._functions import FeatureFunction
from ._lookup import FeatureLookup
from ._online import PublishResult, RedisOnlineStore, SqliteOnlineStore
from ._training_set import TrainingSet

__all__ = [
    "ConsistencyReport",
    "FeatureEngineeringClient",
    "FeatureFunction",
    "FeatureLookup",
    "FeatureStoreClient",
    "FeatureTable",
    "LookupAudit",
    "Mismatch",
    "ModelVersionUse",
    "PublishResult",
    "RedisOnlineStore",
    "RunUse",
    "SqliteOnlineStore",
    "TableCheck",
    "TrainingSet",
    "TrainingSetAudit",
    "TrainingSetUse",
    "errors",
]
