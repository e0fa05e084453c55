#pragma once
/// @file buffer.hpp
/// `buffer<T>`: the owning storage of every activation, cache and gradient. A std::vector whose
/// data starts on a 64-byte boundary. Why: Eigen's vectorised reductions handle the elements
/// before the first packet-aligned address one at a time and the rest in packets, so with
/// std::allocator the rounding of a sum depends on where malloc happened to put the buffer, and
/// the same computation differs in the last bits between runs, policies and thread counts. With
/// every buffer aligned to the widest packet (AVX-512), results depend only on the inputs.

#include <cstddef>
#include <new>
#include <vector>

namespace bitfit {

namespace detail {
inline constexpr std::size_t buffer_alignment = 64;

template <class T>
struct aligned_allocator {
  using value_type = T;
  aligned_allocator() noexcept = default;
  template <class U>
  aligned_allocator(const aligned_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{buffer_alignment}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    ::operator delete(p, n * sizeof(T), std::align_val_t{buffer_alignment});
  }
  template <class U>
  bool operator==(const aligned_allocator<U>&) const noexcept { return true; }
};
}  // namespace detail

/// 64-byte aligned owning storage; see the file comment.
template <class T>
using buffer = std::vector<T, detail::aligned_allocator<T>>;

}  // namespace bitfit
