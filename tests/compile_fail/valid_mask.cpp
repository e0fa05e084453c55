// The control: the same constructs with a valid mask compile and behave.
#include <bitfit/train/mask.hpp>
using m = bitfit::trainable_mask<bitfit::term::bq, bitfit::term::bm2>;
static_assert(m::may_train(bitfit::term::bq) && m::may_train(bitfit::term::bm2));
static_assert(!m::may_train(bitfit::term::bk));
static_assert(bitfit::mask_policy<m> && bitfit::mask_policy<bitfit::runtime_mask>);
int main() { return m::may_train(bitfit::term::bv) ? 1 : 0; }
