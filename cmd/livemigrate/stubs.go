package main

// Commands not built yet would be registered here with notBuilt; every
// command of the product's surface now has its own file.
