module uca.invalid/interop

go 1.19
