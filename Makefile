# The two commands a user needs: `make run` and `make test`.
JOBS ?= 2
BULWARK_DEMO_ADMIN_PASSWORD ?= bulwark-demo

.PHONY: deps build run test test-deps asan format format-check bench clean

deps:
	./scripts/install-deps.sh run

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target bulwark

run: build
	./scripts/run-demo.sh

test-deps:
	./scripts/install-deps.sh test

asan: test-deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

test: asan format-check
	cd build-asan && ctest --output-on-failure --timeout 300 -j $(JOBS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

format-check:
	clang-format --dry-run --Werror $$(git ls-files '*.cpp' '*.hpp')

bench: deps
	./bench/run

clean:
	rm -rf build build-asan
