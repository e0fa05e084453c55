// Must not compile: there is no bias term "bz".
#include <bitfit/train/mask.hpp>
int main() { return bitfit::trainable_mask<bitfit::term::bz>::may_train(bitfit::term::bq); }
