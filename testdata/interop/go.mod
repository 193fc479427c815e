module github.com/kmsledger/kmsledger/testdata/interop

go 1.26.8

require (
	aead.dev/mtls v0.2.1
	github.com/minio/kms-go/kes v0.3.1
	github.com/minio/kms-go/kms v0.5.1-0.20250225090116-4e64ce8d0f35
	google.golang.org/protobuf v1.33.0
)

require (
	aead.dev/mem v0.2.0 // indirect
	github.com/prometheus/client_model v0.6.0 // indirect
	github.com/prometheus/common v0.51.1 // indirect
)
