// Package postgres is a session store on PostgreSQL through pgx v5.
package postgres
