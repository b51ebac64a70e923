module example.com/wtexample

go 1.19

require github.com/wondertwin/wt/dist/go/wttest v0.0.0

replace github.com/wondertwin/wt/dist/go/wttest => ../wttest
