// Package fielderr owns the module's one validation error, Error: a reason and the name of the
// field it is about, a JSON field or a command-line flag. Standard library only, so that every
// package — subjects and config included — may return it.
package fielderr
