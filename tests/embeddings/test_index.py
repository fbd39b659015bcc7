"""embeddings.index: exact FAISS search, standardisation, atomic save and load."""

import faiss
import numpy as np
import pytest

from embeddings import index
from embeddings.index import VectorIndex


def collection(n: int = 200, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scales = np.logspace(0, 4, d)  # features in wildly different units, like mel-stats
    vectors = (rng.normal(size=(n, d)) * scales).astype(np.float32)
    return vectors, np.arange(n, dtype=np.int64) * 10 + 7


@pytest.mark.parametrize("standardise", [False, True])
def test_every_vector_finds_itself_first(standardise):
    vectors, ids = collection()
    built = VectorIndex.build(vectors, ids, standardise=standardise)
    found, distances = built.search(vectors, k=3)
    assert np.array_equal(found[:, 0], ids)
    assert np.allclose(distances[:, 0], 0.0, atol=1e-3)


def test_a_standardised_index_ranks_like_brute_force_on_z_scores():
    vectors, ids = collection()
    built = VectorIndex.build(vectors, ids, standardise=True)
    query = vectors[3] + 0.5 * vectors.std(axis=0)
    z, mean, std = index.standardise(vectors)
    expected = ids[np.argsort(((z - (query - mean) / std) ** 2).sum(axis=1))[:5]]
    found, _ = built.search(query, k=5)
    assert found.tolist() == [expected.tolist()]


def test_standardising_changes_which_neighbour_is_nearest():
    # Column 0 spreads over ±6, column 1 over ±1000: 6 units of the first are a lot.
    vectors = np.array(
        [[6, 0], [0, 50], [0, 1000], [0, -1000], [-6, 1000], [-6, -1000]], dtype=np.float32
    )
    ids = np.arange(6, dtype=np.int64)
    query = np.zeros(2, dtype=np.float32)
    raw, _ = VectorIndex.build(vectors, ids, standardise=False).search(query, 1)
    scaled, _ = VectorIndex.build(vectors, ids, standardise=True).search(query, 1)
    assert raw[0, 0] == 0
    assert scaled[0, 0] == 1


def test_search_accepts_one_query_or_a_batch_and_caps_k_at_the_index_size():
    vectors, ids = collection(n=6)
    built = VectorIndex.build(vectors, ids, standardise=False)
    assert built.search(vectors[0], 4)[0].shape == (1, 4)
    assert built.search(vectors[:3], 4)[1].shape == (3, 4)
    assert built.search(vectors[0], 50)[0].shape == (1, 6)


def test_a_query_of_the_wrong_dimension_is_refused():
    vectors, ids = collection()
    with pytest.raises(ValueError, match="dimension"):
        VectorIndex.build(vectors, ids, standardise=False).search(np.zeros(3), 1)


def test_a_saved_index_loads_with_the_same_answers_and_no_temporary_files(tmp_path):
    vectors, ids = collection()
    built = VectorIndex.build(vectors, ids, standardise=True)
    path = tmp_path / "mel-stats-1.faiss"
    built.save(path)
    loaded = VectorIndex.load(path)
    assert loaded.standardised and len(loaded) == len(ids) and loaded.dim == 8
    for a, b in zip(built.search(vectors[:10], 5), loaded.search(vectors[:10], 5), strict=True):
        assert np.array_equal(a, b)
    assert faiss.read_index(str(path)).ntotal == len(ids)  # a plain FAISS file
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".npz"]


def test_saving_over_an_index_replaces_it(tmp_path):
    path = tmp_path / "x.faiss"
    vectors, ids = collection(n=50)
    VectorIndex.build(vectors, ids, standardise=False).save(path)
    VectorIndex.build(vectors[:20], ids[:20], standardise=True).save(path)
    loaded = VectorIndex.load(path)
    assert len(loaded) == 20 and loaded.standardised


def test_an_index_paired_with_another_builds_sidecar_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(index, "LOAD_RETRY_S", 0.0)
    vectors, ids = collection()
    VectorIndex.build(vectors, ids, standardise=True).save(tmp_path / "a.faiss")
    VectorIndex.build(vectors[:10], ids[:10], standardise=True).save(tmp_path / "b.faiss")
    (tmp_path / "b.faiss.npz").replace(tmp_path / "a.faiss.npz")
    with pytest.raises(ValueError, match="does not match its sidecar"):
        VectorIndex.load(tmp_path / "a.faiss")


def test_build_refuses_duplicate_ids_nan_vectors_and_mismatched_lengths():
    vectors, ids = collection(n=5)
    with pytest.raises(ValueError, match="unique"):
        VectorIndex.build(vectors, np.zeros(5, np.int64), standardise=False)
    with pytest.raises(ValueError, match="NaN"):
        VectorIndex.build(np.full((5, 8), np.nan, np.float32), ids, standardise=False)
    with pytest.raises(ValueError, match="ids"):
        VectorIndex.build(vectors, ids[:3], standardise=False)


def test_standardise_gives_zero_mean_unit_std_and_floors_constant_columns():
    vectors, _ = collection()
    vectors[:, 2] = 5.0
    z, mean, std = index.standardise(vectors)
    assert np.allclose(z.mean(axis=0), 0.0, atol=1e-4)
    assert np.allclose(np.delete(z.std(axis=0), 2), 1.0, atol=1e-4)
    assert std[2] == pytest.approx(1e-6) and mean[2] == pytest.approx(5.0)
    assert np.all(z[:, 2] == 0.0)
