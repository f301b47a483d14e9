#include <cstdio>

#include "fiber/fiber.h"

int main() {
  int v = fiber::run([] { return fiber::spawn_on(0, [] { return 41; }).join() + 1; });
  std::printf("%d\n", v);
  return v == 42 ? 0 : 1;
}
