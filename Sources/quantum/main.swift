print("quantum")
