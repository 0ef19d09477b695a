module github.com/wispstack/wisp

go 1.25.0
