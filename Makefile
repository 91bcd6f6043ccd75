# Convenience targets; CI runs .ci/run.
.PHONY: all ci test short demo fmt vet build

all: fmt vet build short

ci:
	bash .ci/run

test:
	go test -count=1 -timeout 12m ./...

short:
	go test -short ./...

demo:
	go run ./cmd/gotor-testnet demo

fmt:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "$$out"; exit 1; fi

vet:
	go vet ./...

build:
	go build ./...
