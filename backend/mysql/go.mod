module github.com/sessionx/sessions/backend/mysql

go 1.26.0

require (
	github.com/go-sql-driver/mysql v1.10.1
	github.com/sessionx/sessions v0.0.0
)

require (
	filippo.io/edwards25519 v1.2.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
)

replace github.com/sessionx/sessions => ../..
