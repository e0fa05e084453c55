// embedding_forward / embedding_backward: the sum of three table rows, and finite-difference
// checks of the three table gradients with repeated ids (the scatter-add must sum them).
#include <bitfit/ops/embedding.hpp>

#include "grad_check.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

using namespace bitfit;
using bitfit::test::check_gradient;

namespace {
constexpr int V = 7, P = 6, Tt = 2, H = 4;
// Two sequences (lengths 4 and 3) packed: ids 3 and 5 repeat, position 0..2 and type 1 repeat.
const std::vector<std::int32_t> ids = {1, 3, 5, 3, 2, 5, 3};
const std::vector<std::int32_t> positions = {0, 1, 2, 3, 0, 1, 2};
const std::vector<std::int32_t> types = {0, 0, 1, 1, 0, 1, 1};
constexpr int N = 7;
}  // namespace

TEST_CASE("embedding forward sums the rows, backward matches finite differences") {
  test::rng r(41);
  auto word = r.vector(V * H), pos = r.vector(P * H), type = r.vector(Tt * H), R = r.vector(N * H);
  std::vector<double> y(N * H);
  auto loss = [&] {
    embedding_forward(y.data(), ids.data(), positions.data(), types.data(), word.data(), pos.data(),
                      type.data(), N, H);
    return test::dot(R, y);
  };
  loss();
  for (int n = 0; n < N; ++n)
    for (int h = 0; h < H; ++h)
      CHECK(y[n * H + h] == word[ids[n] * H + h] + pos[positions[n] * H + h] + type[types[n] * H + h]);

  std::vector<double> dword(V * H, 0.0), dpos(P * H, 0.0), dtype(Tt * H, 0.0);
  embedding_backward(dword.data(), dpos.data(), dtype.data(), R.data(), ids.data(), positions.data(),
                     types.data(), N, H);
  check_gradient("dword", loss, word.data(), dword.data(), dword.size());
  check_gradient("dpos", loss, pos.data(), dpos.data(), dpos.size());
  check_gradient("dtype", loss, type.data(), dtype.data(), dtype.size());
  // Rows no token uses get nothing (id 0, 4, 6; position 4, 5).
  for (int row : {0, 4, 6})
    CHECK(test::all_zero(std::span<const double>(dword).subspan(std::size_t(row) * H, H)));
  CHECK(test::all_zero(std::span<const double>(dpos).subspan(4 * H)));

  // The backward accumulates.
  auto dword2 = dword;
  embedding_backward(dword2.data(), dpos.data(), dtype.data(), R.data(), ids.data(), positions.data(),
                     types.data(), N, H);
  for (std::size_t i = 0; i < dword.size(); ++i) CHECK(dword2[i] == 2 * dword[i]);
}
