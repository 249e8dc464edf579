"""Query families of the Store, gathered as one mixin.

Each family lives in its own module (vocabulary here; statistics, remedies, features in
theirs) so the Store stays one class while no module grows past a few hundred lines.
"""
from __future__ import annotations

from jobmedic.knowledge.feature_queries import FeatureQueriesMixin
from jobmedic.knowledge.remedies import RemediesMixin
from jobmedic.knowledge.sessions import SessionsMixin
from jobmedic.knowledge.stats_queries import StatsMixin
from jobmedic.knowledge.vocab import VocabMixin


class QueriesMixin(VocabMixin, StatsMixin, FeatureQueriesMixin, RemediesMixin, SessionsMixin):
    """All read-side query families of the Store."""
