/**
 * A program that builds one component alone, named by stack config `fixture:component`, with the arguments in
 * `fixture:args`: the component tests run it to check argument errors and parenting without the whole program.
 */
import * as pulumi from "@pulumi/pulumi";
import { Ec2AgentFleet } from "../components/ec2-agent-fleet";
import { EcsAgentCluster } from "../components/ecs-agent-cluster";

const config = new pulumi.Config("fixture");
const components = { Ec2AgentFleet, EcsAgentCluster } as const;
const which = config.require("component") as keyof typeof components;
const Component = components[which] as new (name: string, args: unknown) => pulumi.ComponentResource;
if (!Component) throw new Error(`fixture: no component ${which}; allowed: ${Object.keys(components).join(", ")}`);
new Component("fixture", config.requireObject("args"));
