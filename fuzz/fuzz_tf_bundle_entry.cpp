// libFuzzer target: the hand-written protobuf decoders of bitfit::tf_checkpoint alone
// (BundleEntryProto and BundleHeaderProto), which the whole-bundle target reaches only through a
// valid table. Any input must decode or throw bitfit::error.
#include <bitfit/io/tf_checkpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const bitfit::tf_tensor_info t = bitfit::detail::parse_bundle_entry(bytes, "entry");
    (void)bitfit::tf_dtype_name(t.dtype);
  } catch (const bitfit::error&) {
  }
  try {
    (void)bitfit::detail::parse_bundle_header(bytes, "header");
  } catch (const bitfit::error&) {
  }
  return 0;
}
