// Must not compile: bq listed twice.
#include <bitfit/train/mask.hpp>
int main() { return bitfit::trainable_mask<bitfit::term::bq, bitfit::term::bq>::may_train(bitfit::term::bq); }
