// Uses the umbrella header the way a user would: a tiny random encoder, one forward pass.
#include <bitfit/bitfit.hpp>

#include <cmath>
#include <cstdio>

int main() {
  bitfit::bert_config c;
  c.hidden_size = 8, c.num_attention_heads = 2, c.intermediate_size = 16, c.num_hidden_layers = 1;
  c.vocab_size = 10, c.max_position_embeddings = 8;
  bitfit::bert_params<float> p(c, /*with_weights=*/true);
  for (std::size_t i = 0; i < p.data.size(); ++i) p.data[i] = 0.01f * float(i % 7);
  bitfit::token_batch batch;
  const std::int32_t ids[] = {1, 2, 3}, types[] = {0, 0, 0};
  batch.add(ids, types);
  bitfit::encoder_state<float> st;
  bitfit::encoder_forward(st, p, batch, bitfit::no_grad{});
  if (!std::isfinite(st.pooled[0])) return 1;
  std::printf("consumer ok %zu\n", st.pooled.size());
}
