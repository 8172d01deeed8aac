/**
 * A program that builds one resource and then fails, as a config check placed after a resource would: the
 * config tests run it to prove that runProgram reports resources registered before a program error.
 */
import * as aws from "@pulumi/aws";

new aws.s3.Bucket("registered-before-the-error", {});
throw new Error("fixture: the program fails after registering one resource");
