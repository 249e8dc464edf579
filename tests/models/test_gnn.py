"""The GraphSAGE failure model: edges only from jobs ended before the target's submission,
training and inductive evaluation beside XGBoost, and a safe (weights-only) artifact."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from jobmedic.knowledge.errors import ModelError
from jobmedic.knowledge.store import Store
from jobmedic.models import artifacts, gnn, gnn_graph, registry, training
from jobmedic.models.features import is_ended, is_failed
from jobmedic.models.synthetic import fill_store

TINY = {"hidden": 8, "epochs": 5, "block_s": 7 * 86400, "knn_ref": 500}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gnn")
    s = Store(tmp / "jm.db")
    fill_store(s, 1500, seed=4)
    frame = training.load(s)
    training.train(s, "failure", str(tmp / "m"), frame=frame, params={"num_boost_round": 20, "nthread": 1})
    card = training.train(s, "gnn", str(tmp / "m"), frame=frame, params=TINY)
    return s, frame, tmp / "m", card


def test_every_edge_comes_from_a_job_ended_before_the_target_was_submitted(env):
    _, (df, X), _, _ = env
    df, X = df.reset_index(drop=True), X.reset_index(drop=True)
    _, _, ei, _, _ = gnn_graph.build_graph(df, X, gnn.DEFAULTS | TINY)
    src, dst = ei.numpy()
    assert len(src) > len(df)  # a real graph
    assert is_ended(df)[src].all()
    assert (df["end_time"].to_numpy()[src] < df["submit_time"].to_numpy()[dst]).all()


def test_gnn_trains_and_is_compared_with_xgboost(env):
    s, frame, models, card = env
    assert card["counts"]["edges"] > 0 and "gnn" in card["validation"]
    assert isinstance(card["ensemble_with_xgboost"], bool)
    res = training.evaluate(s, "gnn", str(models), card["window"]["until_epoch"], frame=frame)
    m = res["metrics"]
    assert m["gnn"]["auroc"] > 0.5 and m["xgboost"]["auroc"] is not None and "ensemble" in m


def test_gnn_artifact_is_a_weights_only_state_dict(env, tmp_path):
    _, _, models, _ = env
    d = artifacts.current_dir(models, "gnn")
    state = torch.load(d / "model.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    import shutil

    dst = tmp_path / "m"
    shutil.copytree(models, dst)
    d2 = artifacts.current_dir(dst, "gnn")
    (d2 / "model.pt").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="sha256"):
        registry.load(dst, "gnn")


def test_new_jobs_are_scored_inductively(env):
    _, (df, X), models, _ = env
    model, meta = registry.load(models, "gnn")
    net = model.net_
    df2, X2 = df.reset_index(drop=True), X.reset_index(drop=True)
    x, ys, ei, _, _ = gnn_graph.build_graph(df2, X2, meta["params"], np.asarray(meta["mean"]), np.asarray(meta["std"]))
    a = gnn_graph.logits(net, x, ys, ei)
    # dropping the last 300 jobs changes nothing for the others: a job only sees its past
    cut = len(df2) - 300
    x, ys, ei, _, _ = gnn_graph.build_graph(df2.iloc[:cut], X2.iloc[:cut], meta["params"],
                                      np.asarray(meta["mean"]), np.asarray(meta["std"]))
    b = gnn_graph.logits(net, x, ys, ei)
    assert (df2["submit_time"].to_numpy()[:cut] <= df2["submit_time"].to_numpy()[cut:].min()).all()
    np.testing.assert_allclose(a[:cut], b, rtol=1e-4, atol=1e-5)


def test_the_sparse_layers_equal_torch_geometric_sageconv(env):
    """SageNet averages W·[h, y] with one CSR product; torch-geometric's SAGEConv gathers and
    scatters the messages: the same logits."""
    _, (df, X), _, _ = env
    df, X = df.reset_index(drop=True), X.reset_index(drop=True)
    x, ys, ei, _, _ = gnn_graph.build_graph(df, X, gnn.DEFAULTS | TINY)
    torch.manual_seed(1)
    net = gnn_graph.SageNet(x.shape[1], 8)
    with torch.no_grad():
        h1 = torch.relu(net.conv1((torch.cat([x, ys], 1), x), ei))
        h2 = torch.relu(net.conv2((torch.cat([h1, ys], 1), h1), ei))
        ref = net.out(torch.cat([h2, torch.relu(net.skip(x))], 1)).squeeze(1).numpy()
    np.testing.assert_allclose(gnn_graph.logits(net, x, ys, ei), ref, rtol=1e-4, atol=1e-5)


def test_training_on_the_reachable_subgraph_equals_the_whole_graph(env):
    """Dropping the nodes submitted after the last training node (none feeds the loss)
    leaves the trained weights as they were."""
    _, (df, X), _, _ = env
    df, X = df.reset_index(drop=True), X.reset_index(drop=True)
    x, ys, ei, _, _ = gnn_graph.build_graph(df, X, gnn.DEFAULTS | TINY)
    sub = df["submit_time"].to_numpy(dtype="float64")
    rows = np.flatnonzero(is_ended(df) & (sub < np.quantile(sub, 0.6)))
    y = is_failed(df)[rows].astype(int)
    nets = []
    for submit in (None, sub):
        torch.manual_seed(0)
        net = gnn_graph.SageNet(x.shape[1], 8)
        gnn_graph.fit(net, x, ys, ei, rows, y, gnn.DEFAULTS | TINY, submit)
        nets.append(net.state_dict())
    for k in nets[0]:
        np.testing.assert_allclose(nets[0][k].numpy(), nets[1][k].numpy(), rtol=1e-3, atol=1e-5, err_msg=k)


def test_the_defaults_are_the_setting_chosen_on_validation(env):
    """30 epochs and 10 nearest neighbours (docs/models.md, "Blend and GNN settings chosen on
    validation"); each job in a block with enough earlier ended jobs gets k_knn kNN in-edges."""
    assert (gnn.DEFAULTS["epochs"], gnn.DEFAULTS["k_knn"], gnn.DEFAULTS["k_shared"]) == (30, 10, 3)
    _, (df, X), _, card = env
    assert card["params"]["k_knn"] == 10
    df, X = df.reset_index(drop=True), X.reset_index(drop=True)
    p = gnn.DEFAULTS | TINY
    from jobmedic.models.gnn_serving import KNN_FEATURES, standardise

    Z, _, _ = standardise(X[gnn.FEATURES].to_numpy())
    _, dst = gnn_graph._knn_edges(df, Z[:, [gnn.FEATURES.index(f) for f in KNN_FEATURES]], p)
    counts = np.bincount(dst, minlength=len(df))
    assert len(dst) > 0 and set(np.unique(counts[counts > 0])) == {10}
