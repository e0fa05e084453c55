// Must not compile: an int is not a mask policy.
#include <bitfit/model/encoder.hpp>
int main() {
  bitfit::encoder_state<float> st;
  bitfit::bert_params<float> p(bitfit::bert_config{}, false);
  bitfit::token_batch b;
  bitfit::encoder_forward(st, p, b, 42);
}
