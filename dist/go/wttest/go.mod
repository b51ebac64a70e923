module github.com/wondertwin/wt/dist/go/wttest

go 1.19
